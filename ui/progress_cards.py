"""The progress card under Generate: idle, queued, extracting, loading, step i/n, finishing (frame i/n), and the end."""

from __future__ import annotations

import html


def idle_card() -> str:
    return '<div class="progress-card idle">Generate to preview here.</div>'


def progress_card(status) -> str:
    """Queue position, then a bar with step (and clip), elapsed and remaining time (a queue.status.JobStatus)."""
    if status.state == "queued":
        where = f"position {status.position}" if status.position else "next"
        return f'<div class="progress-card" data-state="queued">Queued: {where} in line</div>'
    if status.state == "downloading":  # a model this machine lacks, before the job loads it
        bar = f'<progress value="{status.step}" max="{status.total}"></progress>' if status.total else ""
        return (f'<div class="progress-card" data-state="downloading">{bar}'
                f'<span class="progress-text">{html.escape(status.describe())}</span></div>')
    if status.state == "extracting":
        return (f'<div class="progress-card" data-state="extracting">'
                f'<progress value="{status.step}" max="{status.total}"></progress>'
                f'<span class="progress-text">Making the {html.escape(status.task or "control")} control · '
                f'frame {status.step}/{status.total} · {status.elapsed_s:.1f}s elapsed</span></div>')
    if status.state == "finishing":  # upscaling or smoothing a result, frame by frame
        eta = f", about {status.remaining_s:.0f}s left" if status.remaining_s is not None else ""
        return (f'<div class="progress-card" data-state="finishing">'
                f'<progress value="{status.step}" max="{status.total}"></progress>'
                f'<span class="progress-text">{html.escape(str(status.task).capitalize())} · '
                f'frame {status.step}/{status.total} · {status.elapsed_s:.1f}s elapsed{eta}</span></div>')
    if not status.total:
        return f'<div class="progress-card" data-state="loading">Loading the model… ({status.elapsed_s:.0f}s)</div>'
    eta = f", about {status.remaining_s:.0f}s left" if status.remaining_s is not None else ""
    clip = f" · clip {status.clip}/{status.clips}" if status.clip else ""
    return (f'<div class="progress-card" data-state="running">'
            f'<progress value="{status.step}" max="{status.total}"></progress>'
            f'<span class="progress-text">Step {status.step}/{status.total}{clip} · '
            f'{status.elapsed_s:.1f}s elapsed{eta}</span></div>')


def final_card(state: str, text: str) -> str:
    return f'<div class="progress-card" data-state="{state}">{html.escape(text)}</div>'
