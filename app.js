// FashionFlow's page (app.py): what runs in the browser. app.py calls these by name.
({
  // On load (and again whenever the page changes): names for the example thumbnails and the image
  // buttons, and the status line beside Generate as a live region for screen readers.
  label: (names) => {
    const label = () => {
      document.querySelectorAll('#examples button.gallery-item, #examples .gallery-item').forEach((item, i) => {
        if (names[i] && !item.getAttribute('aria-label')) {
          item.setAttribute('aria-label', 'Example photo: ' + names[i]);
          item.querySelectorAll('img').forEach(img => img.setAttribute('alt', names[i]));
        }
      });
      // Image buttons (the uploaded photo, the preview) say which image they are.
      document.querySelectorAll('button').forEach(button => {
        if (button.getAttribute('aria-label') || button.title || button.innerText.trim()) return;
        const block = button.closest('.block');
        const label = block?.querySelector('[data-testid=block-label]')?.innerText.trim();
        if (label || block?.id) button.setAttribute('aria-label', label || block.id);
      });
      const status = document.getElementById('job-status');
      if (status && !status.getAttribute('aria-live')) {
        status.setAttribute('role', 'status');
        status.setAttribute('aria-live', 'polite');
      }
    };
    label();
    new MutationObserver(label).observe(document.body, {childList: true, subtree: true});
  },

  // A finished video: scrolled into view (on a phone it is far below the button).
  scrollToResult: () => document.getElementById('video')?.scrollIntoView({behavior: 'smooth', block: 'start'}),
})
