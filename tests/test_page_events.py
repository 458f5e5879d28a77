"""Page events replayed on a built (not launched) studio, for what a browser shows only by chance."""

from __future__ import annotations

import asyncio


def test_a_generation_pick_sent_twice_with_the_old_checkpoints_switches_once_and_fails_nothing(settings):
    """gradio 6's Dropdown sends .input twice for one mouse pick, both with the checkpoints from before
    the pick. gradio refused the second against the choices the first had just set ("Value: tiny-t2v
    is not in the list of choices"), a handler traceback seen about once in twelve switches."""
    from gradio.state_holder import SessionState

    from ui.shell import build_studio
    from wan_studio import catalog

    demo = build_studio(settings)
    by_id = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    generation = by_id["generation"]
    assert generation.value == "tiny"  # no GPU here
    switch = next(fn for fn in demo.fns.values() if (generation._id, "input") in fn.targets)
    sent = [block.value for block in switch.inputs]  # what the page holds before the pick
    sent[0] = "2.2"
    t2v_model = switch.outputs.index(by_id["t2v-model"])
    t2v_size = switch.outputs.index(by_id["t2v-size"])

    async def pick_sent_twice():
        state = SessionState(demo)
        return [await demo.process_api(switch, list(sent), state) for _ in range(2)]

    for answer in asyncio.run(pick_sent_twice()):
        model = answer["data"][t2v_model]
        assert model["value"] == "wan2.2-ti2v-5b", model  # Wan 2.2's T2V default, on the first and second
        assert {catalog.get(choice[1]).generation for choice in model["choices"]} == {"2.2"}
        assert "tiny" not in str(answer["data"][t2v_size])
