"""The web page's side of the app: the Gradio event handlers over `fashionflow.service`, and the small
pieces of HTML the page shows. `app.py` lays the page out and wires its events to `PageEvents`;
this package is the only part of FashionFlow besides app.py that imports Gradio (`events`).

    html     the banners, messages, notes and the status line, as HTML (no Gradio)
    events   PageEvents (every handler), Form (what Generate sends: /generate's parameters)
"""
