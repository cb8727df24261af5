from __future__ import annotations

import os
import subprocess
import sys


def _cache_dir(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CJL_CACHE_DIR"}
    if env_value is not None:
        env["CJL_CACHE_DIR"] = env_value
    code = "from analysis import config; print(config.CACHE_DIR, config.PROJECT_ROOT, sep='\\n')"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_cache_dir_defaults_to_dot_cache_under_the_root():
    cache, root = _cache_dir(None).splitlines()
    assert cache == os.path.join(root, ".cache")


def test_cjl_cache_dir_moves_the_cache(tmp_path):
    cache, _ = _cache_dir(str(tmp_path / "scratch")).splitlines()
    assert cache == str((tmp_path / "scratch").resolve())
