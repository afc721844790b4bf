// FashionFlow's page (app.py): what runs in the browser. app.py calls these by name.
({
  // On load (and again whenever the page changes): names for the example thumbnails and the image
  // buttons, the status line beside Generate as a live region for screen readers, the Framing
  // choices as one radio group, the keyboard's place kept, and the live preview brought into view.
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
      // Gradio names each radio button on its own: one name makes the choices of Framing, and of
      // Length, one group each (one Tab stop, arrow keys move between them).
      for (const group of ['fit', 'length']) {
        document.querySelectorAll(`#${group} input[type=radio]`).forEach(radio => {
          if (radio.name !== group) radio.name = group;
        });
      }
    };

    // The keyboard's place: a control that disappears (the upload zone once a photo is in) or turns off
    // (Generate while it works) would send focus back to the top of the page. Instead it goes to what
    // took the control's place: the next control for one turned off (Generate -> Cancel), the
    // component itself for one that was replaced.
    let last = null;
    document.addEventListener('focusin', event => {
      last = {element: event.target, block: event.target.closest('.block[id]')};
    });
    const usable = element =>
      element.isConnected && !element.disabled && element.tabIndex >= 0 && element.getClientRects().length > 0;
    const controls = 'button, input, select, textarea, a[href], [tabindex]:not([tabindex="-1"])';
    const keepFocus = () => {
      const active = document.activeElement;
      const lost = !active || active === document.body || active.disabled;
      if (!last || !lost || usable(last.element)) return;
      let target = null;
      if (last.element.isConnected && last.element.disabled) {
        const all = [...document.querySelectorAll(controls)];
        target = all.slice(all.indexOf(last.element) + 1).find(usable);
      } else if (last.block?.isConnected) {
        target = last.block;
        if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
      }
      if (target) target.focus({preventScroll: true});
    };

    // The live preview's first look of a run appears under Generate, which on a phone may sit at the
    // bottom of the screen: brought into view, as long as the visitor is still looking at Generate.
    let looking = false;
    const reveal = () => {
      const look = document.querySelector('#live-preview figure');
      const generate = document.getElementById('generate')?.getBoundingClientRect();
      const watching = generate && generate.top >= 0 && generate.bottom <= window.innerHeight;
      if (look && !looking && watching) {
        const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
        look.scrollIntoView({block: 'nearest', behavior: smooth ? 'smooth' : 'auto'});
      }
      looking = Boolean(look);
    };

    label();
    new MutationObserver(() => {
      label();
      keepFocus();
      reveal();
    }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['disabled', 'class']});
  },

  // A problem found when Generate was pressed, or that ended the run, appears under the button, which on
  // a phone may sit at the bottom of the screen: brought into view. (Gradio may draw it a moment after
  // this runs, and does not draw an unchanged message again: look for it a while, then scroll.)
  revealProblem: () => {
    const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
    let tries = 20;
    const look = () => {
      const problems = document.querySelectorAll('#settings-message [role=alert], #job-status [role=alert]');
      const problem = [...problems].find(element => element.getClientRects().length > 0);
      if (problem) problem.scrollIntoView({block: 'nearest', behavior: smooth ? 'smooth' : 'auto'});
      else if (--tries > 0) setTimeout(look, 50);
    };
    look();
  },

  // A finished video: scrolled into view (on a phone it is far below the button).
  scrollToResult: () => document.getElementById('video')?.scrollIntoView({behavior: 'smooth', block: 'start'}),
})
