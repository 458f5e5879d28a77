"""A cluster of GPU machines through Ray (`pip install wan-studio[cluster]`): the head's queue
stays the one source of truth, and its jobs run on Ray workers anywhere in the cluster.

Each worker is a Ray actor of ours (`JobRunner`) holding an Engine (one active pipeline, a memory
plan chosen for its GPU) on a node with a free GPU: Ray places it by its resources (one GPU each;
one CPU each on a cluster without GPUs, as in the tests). Every worker answers an offer for each
queued job (does its memory plan fit this node, is the model here); the dispatcher places jobs in
queue order on an idle worker that fits, one with the model first, and refuses a job no worker
can run with each node's reason. It sends the job with its input files (nodes need not share a
disk); the worker runs it into a scratch library of its own and returns the result's
files, which the head keeps in its output library before it marks the job done. While a job runs
the dispatcher reads the worker's progress about twice a second into the queue (where the page
and the CLI read it) and passes on a Stop. Models are found on each node as on any machine (its
models folder, the shared Hugging Face cache, or a download).

A worker that dies (its node went away, `ray.kill`) is replaced by a new one, and its job goes back
to the head of the queue once; a job whose worker dies twice fails with that reason. The head
itself is a process of the studio: if it dies, its running jobs come back at the head of the
queue when it starts again, like any job whose process is gone.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from wan_studio.errors import Cancelled, ModelNotAvailable, StudioError

log = logging.getLogger(__name__)

OFFER_WAIT_S = 60  # how long a job waits for every worker's answer before it is placed on those that gave one
WORKER_DIED = "Its cluster worker died (its node may have gone); put back at the head of the queue (once)."


def check_address(address: str) -> None:
    """Something answers at a host:port address (Ray's own connect would retry for a long while)."""
    if not address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
    except (OSError, ValueError):
        raise StudioError(f"No Ray cluster answers at {address}. Start one with `python -m wan_studio cluster "
                          f"start` on the head machine, or check the address (host:port).") from None


def connect(address: str | None, **init) -> None:
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to), or start a
    local one; StudioError when nothing answers there."""
    try:
        import ray
    except ImportError:
        raise StudioError("A cluster needs Ray: pip install 'wan-studio[cluster]' (or: pip install ray).") from None
    if ray.is_initialized():
        return
    check_address(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **init)
    except ConnectionError as exc:
        raise StudioError(f"Could not join the Ray cluster at {address}: {exc}") from None


def _runner_class():
    """The worker actor, defined on first use so Ray loads only when a cluster is asked for."""
    import ray

    @ray.remote(max_concurrency=4)  # run, and progress, stop and offers while it runs
    class JobRunner:
        def __init__(self):
            from wan_studio.runtime.engine import Engine
            from wan_studio.settings import load_settings

            self.scratch = Path(tempfile.mkdtemp(prefix="wan-studio-worker-"))
            self.engine = Engine(dataclasses.replace(load_settings(), output_dir=self.scratch / "outputs"),
                                 previews=False)
            self.status = None
            self.cancel = threading.Event()

        def run(self, request: dict, preparation: dict | None, files: dict[str, list[tuple[str, bytes]]]) -> dict:
            """The job's result files, made here from its request and the bytes of its inputs."""
            from wan_studio.requests import request_from_dict

            self.cancel.clear()
            folder = Path(tempfile.mkdtemp(dir=self.scratch, prefix="inputs-"))
            mapping = {}
            for name, items in files.items():
                for index, (filename, data) in enumerate(items):
                    path = folder / f"{name}-{index}{Path(filename).suffix}"
                    path.write_bytes(data)
                    mapping.setdefault(name, []).append(str(path))
            try:
                typed = request_from_dict(request, preparation)
                typed = typed.with_input_files(mapping) if mapping else typed
                result = self.engine.run(typed, on_progress=self._progress, cancel=self.cancel)
                made = self.engine.library.result_files(result.id)
                self.engine.library.delete(result.id)
                return made
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # the job's inputs: the head keeps its own copies

        def offer(self, request: dict, preparation: dict | None) -> dict:
            """Whether this worker can run the job: its memory plan fits this node's GPU (as the
            node's settings let it use it), and whether the node has the model already."""
            import ray

            from wan_studio import models
            from wan_studio.requests import FinishingRequest, request_from_dict

            node = ray.util.get_node_ip_address()
            where = f"{node} ({self.engine.machine.describe()})"
            try:
                typed = request_from_dict(request, preparation)
            except Exception as exc:  # e.g. a model this node's version of the studio does not know
                return {"fits": False, "where": where, "node": node, "has_model": False,
                        "why": f"{type(exc).__name__}: {exc}"}
            if isinstance(typed, FinishingRequest):
                return {"fits": True, "where": where, "node": node, "has_model": True}
            if typed.parallel > 1:
                return {"fits": False, "where": where, "node": node, "has_model": False,
                        "why": f"a cluster worker has one GPU, and this job is split over {typed.parallel}: run it "
                               f"in a studio on one machine (--gpus), or with GPUs for this job 1"}
            try:
                self.engine.choose_plan(typed)
            except Exception as exc:  # NoPlanFits: what it needs, against what this node has
                return {"fits": False, "where": where, "node": node, "has_model": False,
                        "why": str(exc).splitlines()[0]}
            return {"fits": True, "where": where, "node": node,
                    "has_model": models.find_local(typed.checkpoint, self.engine.settings) is not None}

        def _progress(self, status) -> None:
            self.status = status

        def progress(self) -> dict | None:
            return self.status.as_dict() if self.status is not None else None

        def stop(self) -> None:
            self.cancel.set()

    return JobRunner


@dataclass
class _Busy:
    job_id: str
    future: object


class ClusterDispatcher:
    """Gives the head's queued jobs to Ray workers, one job per worker at a time."""

    def __init__(self, store, library, workers: int | None = None, poll_s: float = 0.5):
        self.store, self.library = store, library
        self.poll_s = poll_s
        self.wanted = workers
        self.runners: list = []
        self.busy: dict[int, _Busy] = {}  # runner index -> its job
        self.replaced = 0
        self._deaths: dict[str, int] = {}
        # what the workers say of each queued job (JobRunner.offer), asked without waiting on Ray
        self._offers: dict[str, dict[int, dict]] = {}  # job id -> runner index -> its offer
        self._asking: dict[tuple[str, int], object] = {}  # (job id, runner index) -> the pending answer
        self._asked: dict[str, tuple[float, dict]] = {}  # job id -> when, and about which request
        self._unable: dict[str, set[int]] = {}  # job id -> runners that could not get its model
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the loop's tick, and an unload from the page, change the workers

    def _resources(self) -> tuple[int, dict]:
        import ray

        total = ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus:
            return self.wanted or gpus, {"num_gpus": 1}
        return self.wanted or max(1, int(total.get("CPU", 1))), {"num_cpus": 1}

    def start(self) -> None:
        count, self._options = self._resources()
        self.runners = [self._new_runner() for _ in range(count)]
        self._thread = threading.Thread(target=self._loop, name="wan-studio-cluster", daemon=True)
        self._thread.start()

    def _new_runner(self):
        return _runner_class().options(**self._options).remote()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dispatching; running jobs are asked to stop and go back to the head of the queue."""
        import ray

        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for index, busy in list(self.busy.items()):
            self.runners[index].stop.remote()
            try:
                self.store.requeue_at_head(busy.job_id, "The studio stopped while its cluster worker ran it; "
                                                        "put back at the head of the queue.")
            except StudioError:  # it ended meanwhile
                pass
        self.busy.clear()
        for runner in self.runners:
            ray.kill(runner)

    def unload(self) -> tuple[int, int]:
        """Free the models' memory on the nodes: each idle worker is ended (its process, and all it held,
        goes) and a fresh one takes its place; one running a job keeps its models.
        -> (workers replaced, workers left running a job)."""
        import ray

        replaced = 0
        with self._lock:
            for index in range(len(self.runners)):
                if index in self.busy:
                    continue
                ray.kill(self.runners[index])
                self._replace(index)
                replaced += 1
            return replaced, len(self.busy)

    def _replace(self, index: int) -> None:
        """A fresh worker in a runner's place, asked afresh about every job."""
        self.runners[index] = self._new_runner()
        for offers in self._offers.values():
            offers.pop(index, None)
        for key in [key for key in self._asking if key[1] == index]:
            del self._asking[key]

    def _loop(self) -> None:
        while not self._stopping.wait(self.poll_s):
            try:
                with self._lock:
                    self._tick()
            except Exception:  # the database or Ray broke for a moment; say so and carry on
                log.exception("cluster dispatcher error; carrying on")

    def _tick(self) -> None:
        import ray

        for index, busy in list(self.busy.items()):
            done, _ = ray.wait([busy.future], timeout=0)
            if done:
                del self.busy[index]
                try:
                    self._finish(index, busy)
                except Exception as exc:  # Ray's other errors, or keeping the result failed: never left running
                    log.exception("cluster job %s could not be finished", busy.job_id)
                    self.store.mark_failed(busy.job_id, exc, "")
            else:
                self._follow(index, busy)
        queued = self.store.list(states=["queued"])
        live = {job.id for job in queued} | {busy.job_id for busy in self.busy.values()}
        for job_id in (set(self._asked) | set(self._deaths)) - live:  # ended, removed: forgotten
            self._forget(job_id)
            self._deaths.pop(job_id, None)
        idle = [index for index in range(len(self.runners)) if index not in self.busy]
        held: set[int] = set()  # workers kept for an earlier job that only they can run
        for job in queued if idle else ():
            offers, complete = self._offers_for(job)
            if not complete:  # placed on every worker's answer (a node with the model first), in queue order
                break
            able = {index for index, offer in offers.items()
                    if offer["fits"] and index not in self._unable.get(job.id, set())}
            if not able:
                if len(offers) == len(self.runners):  # every worker said no: why, node by node
                    self._refuse(job, offers)
                continue  # (else it waits for those still to answer: a worker starting, or replaced)
            free = [index for index in idle if index in able and index not in held]
            if not free:
                held |= able  # they take nothing after it, so it runs on the first of them to finish
                continue
            index = min(free, key=lambda i: (not offers[i]["has_model"], i))  # a node with the model first
            try:
                self.store.claim(job.id, where=offers[index].get("node"))
            except StudioError:  # stopped or removed meanwhile
                continue
            try:
                future = self.runners[index].run.remote(job.request, job.prepared, _input_bytes(job.typed_request()))
            except Exception as exc:  # its inputs unreadable, Ray refusing: the job fails, the queue goes on
                self.store.mark_failed(job.id, exc, "")
                continue
            self.busy[index] = _Busy(job.id, future)
            idle.remove(index)
            if not idle:
                break

    def _offers_for(self, job) -> tuple[dict[int, dict], bool]:
        """Each worker's offer for the job so far, and whether it is complete: every worker answered,
        or OFFER_WAIT_S went by (a worker still starting, or gone). Asked once per worker (a worker
        busy with another job answers too) and again for an edited job; never waited on here."""
        import ray
        from ray.exceptions import RayActorError

        when, about = self._asked.get(job.id, (None, None))
        if about != job.request:
            self._forget(job.id)
            when = time.monotonic()
            self._asked[job.id] = (when, job.request)
        offers = self._offers.setdefault(job.id, {})
        for index, runner in enumerate(self.runners):
            key = (job.id, index)
            if index in offers:
                continue
            future = self._asking.get(key)
            if future is None:
                self._asking[key] = runner.offer.remote(job.request, job.prepared)
            elif ray.wait([future], timeout=0)[0]:
                del self._asking[key]
                try:
                    offers[index] = ray.get(future)
                except RayActorError:  # it died idle (a busy one is replaced when its job's end shows it)
                    if index not in self.busy:
                        log.warning("cluster worker %d died idle; replaced", index)
                        self._replace(index)
                        self.replaced += 1
                except Exception:  # it could not answer: asked again next time
                    log.exception("cluster worker %d did not answer for job %s", index, job.id)
        return offers, len(offers) == len(self.runners) or time.monotonic() - when > OFFER_WAIT_S

    def _forget(self, job_id: str) -> None:
        self._offers.pop(job_id, None)
        self._asked.pop(job_id, None)
        self._unable.pop(job_id, None)
        for key in [key for key in self._asking if key[0] == job_id]:
            del self._asking[key]

    def _refuse(self, job, offers: dict[int, dict]) -> None:
        reasons = sorted({f"{offer['where']}: {offer.get('why') or 'could not get the model'}"
                          for offer in offers.values()})
        try:
            self.store.claim(job.id)
        except StudioError:  # stopped or removed meanwhile
            return
        self.store.mark_failed(job.id, StudioError("No worker of the cluster can run this job. "
                                                   + "; ".join(reasons) + "."), "")
        self._forget(job.id)

    def _follow(self, index: int, busy: _Busy) -> None:
        """The running job's progress into the queue, and a Stop asked there out to its worker."""
        import ray

        try:
            status = ray.get(self.runners[index].progress.remote(), timeout=5)
        except Exception:  # a worker that died shows on its job's future next time
            return
        if status is not None:
            self.store.set_progress(busy.job_id, status)
        if self.store.stop_requested(busy.job_id):
            self.runners[index].stop.remote()

    def _finish(self, index: int, busy: _Busy) -> None:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        try:
            files = ray.get(busy.future)
        except RayActorError:
            self._replace(index)  # a fresh worker in its place
            self.replaced += 1
            deaths = self._deaths[busy.job_id] = self._deaths.get(busy.job_id, 0) + 1
            if deaths == 1:
                self.store.requeue_at_head(busy.job_id, WORKER_DIED)
            else:
                self.store.mark_failed(busy.job_id, StudioError("Its cluster worker died twice while running it; "
                                                                "left out of the queue. Retry it by hand."), "")
            return
        except RayTaskError as exc:  # the job itself failed or was stopped, on the worker
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            if isinstance(cause, Cancelled):
                self.store.mark_cancelled(busy.job_id)
            elif isinstance(cause, ModelNotAvailable) and self._another_could_run(busy.job_id, index):
                # this node could not get the model (no Hub, no copy): skipped for this job
                self.store.requeue_at_head(busy.job_id, f"Its model could not be had on a cluster node "
                                                        f"({str(cause).splitlines()[0]}); tried on another.")
            else:
                self.store.mark_failed(busy.job_id, cause, str(exc))
            return
        result = self.library.adopt(files)
        self.store.mark_done(busy.job_id, result)

    def _another_could_run(self, job_id: str, index: int) -> bool:
        unable = self._unable.setdefault(job_id, set())
        unable.add(index)
        return any(offer["fits"] and other not in unable for other, offer in self._offers.get(job_id, {}).items())


def _input_bytes(request) -> dict[str, list[tuple[str, bytes]]]:
    """The job's input files (its queue copies) as bytes, by field: nodes need not share a disk."""
    return {name: [(Path(path).name, Path(path).read_bytes()) for path in paths]
            for name, paths in request.input_files().items()}
