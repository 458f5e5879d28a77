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


def test_the_page_load_fills_each_cost_line_as_the_panel_estimates_the_values_the_page_holds(settings):
    """The load event reads no inputs (each input an event reads costs the page's script a walk of the
    tree on every later event), so it takes the values the studio was built with. Each panel's cost line
    from it must be the one the panel's own estimate gives when the page sends those values."""
    from gradio.state_holder import SessionState

    from ui.shell import build_studio

    demo = build_studio(settings)
    by_id = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    costs = {block._id: block for block in by_id.values() if block.elem_id.endswith("-cost")}
    assert len(costs) >= 8  # one per mode's panel
    fill = next(fn for fn in demo.fns.values() if fn.targets and fn.targets[0][1] == "load" and fn.fn
                and {block._id for block in fn.outputs} >= set(costs))
    assert fill.inputs == []
    def size_event(cost):  # the estimate a size pick runs: the page's values in, the cost line out
        size = by_id[cost.elem_id.removesuffix("-cost") + "-size"]
        return next(fn for fn in demo.fns.values() if (size._id, "input") in fn.targets and fn.outputs == [cost])

    size_events = [size_event(cost) for cost in costs.values()]
    assert len(size_events) == len(costs)

    async def replay():
        state = SessionState(demo)
        loaded = await demo.process_api(fill, [], state)
        own = {fn.outputs[0]._id: await demo.process_api(fn, [block.value for block in fn.inputs], state)
               for fn in size_events}
        return loaded, own

    loaded, own = asyncio.run(replay())
    for index, block in enumerate(fill.outputs):
        if block._id in costs:
            line = loaded["data"][index]
            assert line == own[block._id]["data"][0], block.elem_id
            assert "frames" in line, (block.elem_id, line)  # an estimate, or what it waits for
    assert "Estimate:" in loaded["data"][fill.outputs.index(by_id["t2v-cost"])]  # T2V needs no input file


def test_the_gallery_answers_its_search_and_filters_in_the_order_they_were_changed(settings):
    """Two events that fill the grid each run as they arrive, so an earlier one's answer can land last:
    the grid showed the results of a filter changed before the search that came after it (a fresh-clone
    browser run of test_gallery_searches_filters_stars_and_acts_on_several_results). The search and
    the filters are one event that never overlaps itself and then runs once with the latest values."""
    from ui.shell import build_studio

    demo = build_studio(settings)
    by_id = {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}
    filters = {by_id[name]._id for name in ("gallery-search", "gallery-mode", "gallery-made", "gallery-starred-only")}
    filling = [fn for fn in demo.fns.values() if by_id["gallery-grid"] in fn.outputs
               and any(target in filters for target, _ in fn.targets)]
    assert len(filling) == 1, [fn.targets for fn in filling]
    assert {target for target, _ in filling[0].targets} == filters and filling[0].trigger_mode == "always_last"
