"""The HTTP service: FastAPI routes over the scoring processes.

Every route but ``/health`` and ``/ready`` needs the bearer token. A request is admitted
only while fewer than ``workers + queue_size`` are in progress (else 503 with
``Retry-After``), and it has ``request_timeout_s`` for its upload, its wait and its scoring.
Uploads go to anonymous files (no name on disk), so nothing of them outlives the request,
even when the server is killed; the workers' scratch folders are removed after each video
and swept at start.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from fvc_assets.serve.pool import Job, WorkerPool
from fvc_assets.serve.served_model import NoModelInService, ServedModel, served_model
from fvc_assets.serve.settings import ServeSettings
from fvc_resources.model_registry import ModelRegistry

log = logging.getLogger("fvc.serve")
SERVE_DIR = "serve"  # under the data root: uploads/ (anonymous files only), work/ (scratch per video), models/
OCTET_STREAM_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


class PathsRequest(BaseModel):
    paths: list[str] = Field(min_length=1, description="Video files, relative to paths_root or absolute inside it")
    operating_point: str | None = None


class Service:
    """What the routes share: settings, the model in service, the scoring processes, admission."""

    def __init__(self, settings: ServeSettings, token: str, root: Path, registry: ModelRegistry):
        self.settings, self.token, self.root, self.registry = settings, token, root, registry
        self.uploads_dir = root / SERVE_DIR / "uploads"
        self.work_dir = root / SERVE_DIR / "work"
        self.models_dir = root / SERVE_DIR / "models"  # bundles fetched from the registry, one folder a version
        self.model: ServedModel | None = None
        self.pool: WorkerPool | None = None
        self.admitted = 0
        self.reload_error = ""

    @property
    def capacity(self) -> int:
        return self.settings.workers + self.settings.queue_size

    def retry_after(self) -> int:
        waiting = max(1, self.admitted - self.settings.workers + 1)
        return max(1, math.ceil(self.pool.mean_job_s * waiting / self.settings.workers))

    def start(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)  # scratch left by a server that was killed
        self.work_dir.mkdir(parents=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.model = self.latest()
        self.pool = WorkerPool(self.model, self.root, self.work_dir, self.settings.workers,
                               self.settings.threads_per_worker)
        self.pool.start()
        log.info("serving %s version %s (%s)", self.model.name, self.model.version, self.model.source)

    def latest(self) -> ServedModel:
        return served_model(self.registry, self.models_dir, self.settings.model_version)

    def reload(self) -> None:
        """Switch to the alias's new version when it has moved; requests in flight finish on theirs."""
        try:
            latest = self.latest()
        except Exception as exc:  # noqa: BLE001 - a registry that is down must not stop the service
            if str(exc) != self.reload_error:
                log.warning("model reload: %s", exc)
            self.reload_error = str(exc)
            return
        self.reload_error = ""
        if latest.version != self.model.version:
            log.info("new model version: %s %s (was %s %s)", latest.name, latest.version, self.model.name,
                     self.model.version)
            self.model = latest
            self.pool.replace_model(latest)

    @contextmanager
    def admission(self):
        if self.admitted >= self.capacity:
            raise HTTPException(503, f"busy: {self.admitted} requests in progress, the most this service takes; "
                                     "retry later", headers={"Retry-After": str(self.retry_after())})
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    def operating_point(self, given: str | None) -> str:
        from fvc_assets.train.operating_points import point_names

        point = given or self.settings.operating_point
        if point not in point_names():
            raise HTTPException(400, f"operating point {point!r}: use one of {', '.join(point_names())}")
        return point

    async def score(self, path: str, name: str, point: str, deadline: float, started: float) -> dict:
        """One video's answer: 200 with the score, or its 4xx/5xx with the reason."""
        job = Job(path=path, name=name, operating_point=point, max_duration_s=self.settings.max_duration_s,
                  deadline=deadline)
        result = await asyncio.wrap_future(self.pool.submit(job))
        total = time.monotonic() - started
        if not result["ok"]:
            return {"video": name, "status": result["status"], "error": f"{name}: {result['reason']}"}
        p = result["prediction"]
        timings = {**result["timings"], "total_s": round(total, 4)}
        return {"video": name, "status": 200, "probability_fake": p["probability_fake"], "spread": p["spread"],
                "fold_scores": p["fold_scores"], "operating_point": p["operating_point"], "threshold": p["threshold"],
                "decision": p["decision"], "explanation": p["reasons"],
                "model": {"name": p["model"], "version": result["model_version"]},
                "facts": result["video"], "timings": timings}


async def receive_upload(request: Request, service: Service, deadline: float):
    """The request body in an anonymous file (413 past the size limit, 400 when empty, 408 when too slow)."""
    limit = service.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared)} bytes is over the limit of {limit} bytes")
    upload = tempfile.TemporaryFile(dir=service.uploads_dir)
    size = 0
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload is over the limit of {limit} bytes")
                upload.write(chunk)
    except TimeoutError:
        upload.close()
        raise HTTPException(408, f"the upload did not complete within {service.settings.request_timeout_s:g} s")
    except ClientDisconnect:
        upload.close()
        raise HTTPException(400, "the client disconnected during the upload")
    except BaseException:
        upload.close()
        raise
    if size == 0:
        upload.close()
        raise HTTPException(400, "empty upload: send the video file as the request body")
    upload.flush()
    return upload


def fd_path(file) -> str:
    """A path the scoring process can open for this process's open file (it has no name on disk)."""
    return f"/proc/{os.getpid()}/fd/{file.fileno()}"


def create_app(settings: ServeSettings, token: str, root: Path, registry: ModelRegistry) -> FastAPI:
    service = Service(settings, token, root, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.start)

        async def watch() -> None:
            while True:
                await asyncio.sleep(settings.reload_interval_s)
                await asyncio.to_thread(service.reload)

        watcher = asyncio.create_task(watch())
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.to_thread(service.pool.close)

    app = FastAPI(title="FVC detector", lifespan=lifespan,
                  description="P(fake) for videos, from the platform's model in service. Every route but "
                              "/health and /ready needs `Authorization: Bearer <token>`.")
    app.state.service = service
    bearer = HTTPBearer(auto_error=False)

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", headers=challenge)
        if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(401, "wrong bearer token", headers=challenge)

    @app.get("/health", summary="Liveness: the server answers")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: a scoring process holds the model")
    async def ready() -> JSONResponse:
        pool = service.pool
        body = {"ready": bool(pool and pool.ready_workers), "model": service.model and service.model.name,
                "version": service.model and service.model.version,
                "workers_ready": pool.ready_workers if pool else 0, "errors": pool.load_errors if pool else []}
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/v1/model", dependencies=[Depends(require_token)], summary="The model in service")
    async def model() -> dict:
        s = service.settings
        return {**service.model.describe(), "workers_ready": service.pool.ready_workers,
                "requests_in_progress": service.admitted, "reload_error": service.reload_error,
                "limits": {"max_upload_bytes": s.max_upload_bytes, "max_duration_s": s.max_duration_s,
                           "max_batch": s.max_batch, "request_timeout_s": s.request_timeout_s,
                           "concurrent": s.workers, "queued": s.queue_size}}

    def answer(result: dict) -> dict:
        if result["status"] != 200:
            raise HTTPException(result["status"], result["error"])
        return result

    @app.post("/v1/score", dependencies=[Depends(require_token)], openapi_extra=OCTET_STREAM_BODY,
              summary="Score one video sent as the request body")
    async def score(request: Request, name: str = Query("upload", description="What the answer calls the video"),
                    operating_point: str | None = None) -> dict:
        started = time.monotonic()
        deadline = started + settings.request_timeout_s
        point = service.operating_point(operating_point)
        with service.admission():
            upload = await receive_upload(request, service, deadline)
            with upload:
                return answer(await service.score(fd_path(upload), name, point, deadline, started))

    @app.post("/v1/score/batch", dependencies=[Depends(require_token)],
              summary="Score up to max_batch videos sent as multipart/form-data files")
    async def score_batch(request: Request, operating_point: str | None = None) -> dict:
        started = time.monotonic()
        deadline = started + settings.request_timeout_s
        point = service.operating_point(operating_point)
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit():
            raise HTTPException(411, "a batch upload needs a Content-Length")
        if int(declared) > settings.max_upload_bytes * settings.max_batch:
            raise HTTPException(413, f"batch of {declared} bytes is over the limit of "
                                     f"{settings.max_upload_bytes * settings.max_batch} bytes")
        with service.admission():
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    form = await request.form(max_files=settings.max_batch, max_fields=settings.max_batch)
            except TimeoutError:
                raise HTTPException(408, f"the upload did not complete within {settings.request_timeout_s:g} s")
            try:
                files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
                if not files:
                    raise HTTPException(400, "no files in the form: send each video as a file part")
                results = await asyncio.gather(*(score_part(f, point, deadline, started) for f in files))
            finally:
                await form.close()
        return {"results": results, "model": {"name": service.model.name, "version": service.model.version}}

    async def score_part(part: UploadFile, point: str, deadline: float, started: float) -> dict:
        name = part.filename or "upload"
        if not part.size:
            return {"video": name, "status": 400, "error": f"{name}: empty upload"}
        if part.size > settings.max_upload_bytes:
            return {"video": name, "status": 413,
                    "error": f"{name}: {part.size} bytes is over the limit of {settings.max_upload_bytes} bytes"}
        part.file.rollover()  # a small part lives in memory until now; the worker reads it through its fd
        part.file.flush()
        return await service.score(fd_path(part.file), name, point, deadline, started)

    @app.post("/v1/score/paths", dependencies=[Depends(require_token)],
              summary="Score up to max_batch videos already on disk under paths_root")
    async def score_paths(body: PathsRequest) -> dict:
        started = time.monotonic()
        deadline = started + settings.request_timeout_s
        if settings.paths_root is None:
            raise HTTPException(404, "scoring by path is off: set paths_root in the service's config")
        if len(body.paths) > settings.max_batch:
            raise HTTPException(400, f"{len(body.paths)} paths: at most {settings.max_batch} per request")
        point = service.operating_point(body.operating_point)
        allowed = settings.paths_root.resolve()
        resolved = []
        for given in body.paths:
            path = (allowed / given).resolve()  # an absolute ``given`` replaces the root, then must lie inside it
            if not path.is_relative_to(allowed):
                raise HTTPException(403, f"{given}: outside the root {allowed} this service may read")
            resolved.append((given, path))
        with service.admission():
            results = await asyncio.gather(*(score_path(given, path, point, deadline, started)
                                             for given, path in resolved))
        return {"results": results, "model": {"name": service.model.name, "version": service.model.version}}

    async def score_path(given: str, path: Path, point: str, deadline: float, started: float) -> dict:
        if not path.is_file():
            return {"video": given, "status": 404, "error": f"{given}: no such file"}
        if path.stat().st_size > settings.max_upload_bytes:
            return {"video": given, "status": 413, "error": f"{given}: over the size limit of "
                                                            f"{settings.max_upload_bytes} bytes"}
        return await service.score(str(path), given, point, deadline, started)

    return app
