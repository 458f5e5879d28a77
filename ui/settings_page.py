"""Settings: checkpoints per mode and their state, download, cache controls,
defaults saved to config.json, and an About block."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ui.availability import generation_choices, sidebar_modes
from ui.runtime import get_studio
from wan_studio import catalog
from wan_studio.errors import StudioError
from wan_studio.models.hub import size_text
from wan_studio.settings import Settings, config_path, save_defaults


@dataclass
class SettingsPage:
    column: gr.Column
    table: gr.Dataframe
    refresh: gr.Button
    download_model: gr.Dropdown
    download: gr.Button
    download_stop: gr.Button
    download_timer: gr.Timer
    download_status: gr.Markdown
    own_files: gr.Dataframe
    own_files_model: gr.Dropdown
    own_files_use: gr.Button
    own_files_status: gr.Markdown
    clear_cache: gr.Button
    unload: gr.Button
    cache_status: gr.Markdown
    default_generation: gr.Dropdown
    save_defaults: gr.Button
    defaults_status: gr.Markdown
    about: gr.Markdown
    opener: tuple | None = None  # (fn, inputs, outputs) the shell runs when the page opens


def model_rows(settings: Settings) -> list[list[str]]:
    from wan_studio.models import local_state

    active = get_studio(settings).engine.swap.active_key
    rows = []
    for mode in sidebar_modes():
        for record in catalog.for_mode(mode):
            loaded = "loaded ✓" if active is not None and active.model == record.id else "not loaded"
            rows.append([mode.upper(), record.name, record.generation, local_state(record, settings),
                         size_text(record.download_gb) if not record.is_tiny else "built locally", loaded])
    return rows


def own_file_rows(settings: Settings) -> list[list[str]]:
    """Model files found in the user's ComfyUI / Wan2GP folders under their usual names."""
    from wan_studio.models.single_file import found_files

    return [[row["model"], row["component"], row["file"], row["precision"], row["where"]]
            for row in found_files(settings)]


def use_own_files(settings: Settings, model_id: str) -> str:
    """Write the found files of one checkpoint into config.json model_files."""
    from wan_studio.models.single_file import suggested_files

    files = suggested_files(settings, model_id) if model_id else {}
    if not files:
        return "No files found for that checkpoint in your ComfyUI / Wan2GP folders."
    path = settings.config_file or config_path()
    current = json.loads(path.read_text()).get("model_files", {}) if path.exists() else {}
    save_defaults({"model_files": {**current, model_id: files}}, path)
    listed = ", ".join(f"{component}: `{Path(file).name}`" for component, file in files.items())
    return f"Saved in `{path}`: {model_id} loads {listed}. Takes effect on the next start."


def about_text(settings: Settings) -> str:
    from wan_studio.backend import probe_light
    from wan_studio.runtime.engine import package_versions

    backend = probe_light()
    versions = " · ".join(f"{k} {v}" for k, v in package_versions().items())
    gpu = backend.describe() if backend.has_gpu else "none (CPU only: Tiny random-weight models)"
    return (f"**Versions:** {versions} · gradio {gr.__version__}\n\n**Backend:** {backend.describe()}\n\n"
            f"**GPU:** {gpu}\n\n**Output folder:** `{settings.output_dir}` · "
            f"**Models folder:** `{settings.models_dir}`")


def build_settings_page(settings: Settings, visible: bool) -> SettingsPage:
    from wan_studio.catalog.defaults import default_generation

    with gr.Column(visible=visible, elem_id="panel-settings") as column:
        gr.Markdown("### Settings")
        gr.Markdown("#### Checkpoints per mode")
        table = gr.Dataframe(headers=["mode", "checkpoint", "generation", "state", "download", "loaded"],
                             interactive=False, elem_id="settings-models")
        refresh = gr.Button("Refresh", size="sm")
        with gr.Row():
            download_model = gr.Dropdown([(c.name, c.id) for c in catalog.checkpoints() if not c.is_tiny],
                                         label="Download a checkpoint", elem_id="settings-download-model")
            download = gr.Button("Download", elem_id="settings-download")
            download_stop = gr.Button("Stop the download", variant="stop", elem_id="settings-download-stop")
        download_status = gr.Markdown(elem_id="settings-download-status")
        download_timer = gr.Timer(1.0, active=False)
        gr.Markdown("#### Your own model files (ComfyUI / Wan2GP)")
        folders = [f"`{p}`" for p in (settings.comfyui_dir, settings.wan2gp_dir) if p]
        gr.Markdown(f"Looking in {', '.join(folders)}." if folders else
                    "Set `comfyui_dir` or `wan2gp_dir` in config.json to reuse the files you already have.")
        own_files = gr.Dataframe(headers=["checkpoint", "component", "file", "precision", "where"],
                                 interactive=False, elem_id="settings-own-files")
        with gr.Row():
            own_files_model = gr.Dropdown([(c.name, c.id) for c in catalog.checkpoints() if not c.is_tiny],
                                          label="Use the found files for", elem_id="settings-own-files-model")
            own_files_use = gr.Button("Use these files", elem_id="settings-own-files-use")
        own_files_status = gr.Markdown(elem_id="settings-own-files-status")
        gr.Markdown("#### Cache controls")
        with gr.Row():
            clear_cache = gr.Button("Clear unfinished outputs and export cache", elem_id="settings-clear-cache")
            unload = gr.Button("Unload models (free memory)", elem_id="settings-unload")
        cache_status = gr.Markdown(elem_id="settings-cache-status")
        gr.Markdown("#### Defaults (saved to config.json)")
        with gr.Row():
            default_gen = gr.Dropdown([("Automatic (Tiny without a GPU, else Wan 2.2)", "auto"), *generation_choices()],
                                      value=settings.default_generation if settings.default_generation else "auto",
                                      label="Generation at start", elem_id="settings-default-generation")
            save = gr.Button("Save defaults", elem_id="settings-save")
        defaults_status = gr.Markdown(f"Now starting on: {default_generation(settings)}",
                                      elem_id="settings-defaults-status")
        gr.Markdown("#### About")
        about = gr.Markdown(elem_id="settings-about")
    return SettingsPage(column, table, refresh, download_model, download, download_stop, download_timer,
                        download_status, own_files, own_files_model, own_files_use, own_files_status, clear_cache,
                        unload, cache_status, default_gen, save, defaults_status, about)


def wire_settings(s: SettingsPage, settings: Settings) -> None:
    private = dict(api_visibility="private")
    s.opener = (lambda: (model_rows(settings), about_text(settings), own_file_rows(settings)), None,
                [s.table, s.about, s.own_files])
    s.own_files_use.click(lambda model_id: use_own_files(settings, model_id), s.own_files_model, s.own_files_status,
                          queue=False, **private)
    s.refresh.click(lambda: model_rows(settings), None, s.table, queue=False, **private)

    def downloads():
        return get_studio(settings).downloads

    def start_download(model_id):
        """Start it in the background; the timer shows its bytes, speed and time left."""
        if not model_id:
            return "Choose a checkpoint first.", gr.Timer(active=False)
        try:
            started = downloads().start(catalog.get(model_id))
        except StudioError as exc:
            return f"⚠ {exc}", gr.Timer(active=False)
        return started.describe(), gr.Timer(active=True)

    def follow_download(model_id):
        current = downloads().status(model_id) if model_id else None
        if current is None:
            return gr.update(), gr.Timer(active=False), gr.update()
        running = current.state == "running"
        return current.describe(), gr.Timer(active=running), gr.update() if running else model_rows(settings)

    def stop_download(model_id):
        current = downloads().stop(model_id) if model_id else None
        return (current.describe() if current else "No download of it is running."), gr.Timer(active=False)

    # (named apart from the API's endpoints: the page's private events take names too)
    s.download.click(start_download, s.download_model, [s.download_status, s.download_timer], queue=False, **private)
    s.download_timer.tick(follow_download, s.download_model, [s.download_status, s.download_timer, s.table],
                          show_progress="hidden", queue=False, **private)
    s.download_stop.click(stop_download, s.download_model, [s.download_status, s.download_timer], queue=False,
                          **private)

    def clear_cache():
        studio = get_studio(settings)
        swept = studio.engine.library.sweep_partials()
        exports = settings.output_dir / ".ui" / "exports"
        shutil.rmtree(exports, ignore_errors=True)
        return f"Removed {swept} unfinished file(s) and the export cache. Results are kept."

    def unload():
        return get_studio(settings).unload_models()

    s.clear_cache.click(clear_cache, None, s.cache_status, queue=False, **private)
    s.unload.click(unload, None, s.cache_status, concurrency_limit=None, **private).then(
        lambda: model_rows(settings), None, s.table, queue=False, **private)

    def save(generation):
        path = save_defaults({"default_generation": generation}, settings.config_file)
        return f"Saved: the studio starts on **{generation}** (in `{path}`); takes effect on the next start."

    s.save_defaults.click(save, s.default_generation, s.defaults_status, queue=False, **private)
