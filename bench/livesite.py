"""Start the real site (Daphne, optionally a Celery worker) in subprocesses: for end-to-end tests
and the benchmarks that measure the site as a user meets it."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveSite:
    url: str
    env: dict
    api_key: str
    procs: list = field(default_factory=list)

    def manage(self, *args: str, timeout: float = 300, env: dict | None = None) -> str:
        proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the site's own log (Daphne, then the worker's if one runs): for failures."""
        data_dir = Path(self.env["OPENCVI_DATA_DIR"])
        parts = [f"--- {p.name} ---\n{p.read_text(errors='replace')[-chars:]}"
                 for p in (data_dir / "daphne.log", data_dir / "worker.log", data_dir / "llm-service.log")
                 if p.exists()]
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_site(data_dir: Path, *, env_overrides: dict | None = None, worker: bool = False,
               setup: bool = False, account: str = "live", llm_service: bool = False) -> LiveSite:
    """Migrate a fresh data dir, create an API key, and start Daphne (+ a worker) on a free port.

    ``setup=True`` also runs ``setup_opencvi`` (models + stock face); models are shared with
    the main data dir through ``OPENCVI_MODELS_DIR`` so nothing is assembled twice.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    main_data = Path(os.environ.get("OPENCVI_DATA_DIR") or ROOT / "data")
    env.update({"OPENCVI_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
                "OPENCVI_MODELS_DIR": os.environ.get("OPENCVI_MODELS_DIR") or str(main_data / "models")})
    # Reuse the stock face built in the main data dir (setup_opencvi accepts existing assets).
    stock = main_data / "faces" / "rstock000001"
    if (stock / "assets.json").exists() and not (data_dir / "faces" / "rstock000001").exists():
        shutil.copytree(stock, data_dir / "faces" / "rstock000001")
    env.update(env_overrides or {})
    port = free_port()
    site = LiveSite(url=f"http://127.0.0.1:{port}", env=env, api_key="")
    site.manage("migrate", "--noinput")
    if setup:
        site.manage("setup_opencvi", timeout=900)
    site.api_key = site.manage("create_api_key", account, "--create-account").strip().splitlines()[-1]
    if llm_service:
        # the box's LLM service, started as `manage.py serve` starts it (cvi_site/llmservice.py)
        from cvi_site.llmservice import service_url, start_llm_service

        llm_port = free_port()
        site.procs.append(start_llm_service(port=llm_port, log_path=data_dir / "llm-service.log",
                                            models_dir=env["OPENCVI_MODELS_DIR"]))
        env["LLM_URL"] = service_url(llm_port)
    bin_dir = Path(sys.executable).parent
    log = open(data_dir / "daphne.log", "w")
    daphne = subprocess.Popen([str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                               "cvi_site.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    site.procs.append(daphne)
    if worker:
        wlog = open(data_dir / "worker.log", "w")
        site.procs.append(subprocess.Popen([str(bin_dir / "celery"), "-A", "cvi_site", "worker", "--pool", "solo",
                                            "--loglevel", "info", "--without-gossip", "--without-mingle",
                                            "--hostname", f"live-{port}@localhost"],
                                           cwd=ROOT, env=env, stdout=wlog, stderr=subprocess.STDOUT))
    from cvi_site.llmservice import wait_for_http

    try:
        wait_for_http(site.url + "/v2/openapi.yaml", proc=daphne)
    except RuntimeError:
        site.stop()
        raise RuntimeError(f"the site did not start:\n{(data_dir / 'daphne.log').read_text()[-3000:]}") from None
    return site
