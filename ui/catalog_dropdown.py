"""The checkpoint and size dropdowns of a mode panel, whose choices a generation or checkpoint switch
replaces.

gradio 6's Dropdown sends `.input` twice for one pick with the mouse, 2 ms apart, both carrying the
values from before the pick's answer. When the first answer (new choices) reached the server before
the second event was read, gradio checked the old value against the new choices and refused it with
a handler traceback ("Value: tiny-t2v is not in the list of choices"). Here the value passes as sent:
every handler reads it through the catalog or the request's own checks, which name what is wrong.

Its own module because gradio writes a .pyi beside the module of every component class it creates
(ignored by git)."""

from __future__ import annotations

import gradio as gr


class CatalogDropdown(gr.Dropdown):
    is_template = True  # the page draws it as gradio's own dropdown

    def preprocess(self, payload):
        return payload
