"""fairdd.parallel: order, one thread per worker, inline mode, worker errors, scripts and notebooks."""

import functools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from fairdd.parallel import available_cpus, map_processes
from fairdd.paths import REPO_ROOT


def _probe(x: int, *, offset: int = 0) -> dict:
    """What a job sees: its value, process, torch threads and OpenMP variable."""
    return {
        "value": x * x + offset,
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"job {x} failed on purpose with {torch.get_num_threads()} threads")
    return x


def test_pool_keeps_order_and_gives_each_worker_one_thread():
    env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = map_processes(functools.partial(_probe, offset=1), range(6), processes=2)
    assert [o["value"] for o in out] == [x * x + 1 for x in range(6)]
    pids = {o["pid"] for o in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert all(o["threads"] == 1 and o["omp"] == "1" for o in out)
    assert {k: os.environ.get(k) for k in env_before} == env_before  # parent left as it was


def test_inline_mode_runs_here_and_restores_threads():
    before = torch.get_num_threads()
    out = map_processes(_probe, [2, 3], processes=1, threads_per_process=2)
    assert [o["value"] for o in out] == [4, 9]
    assert all(o["pid"] == os.getpid() and o["threads"] == 2 for o in out)
    assert torch.get_num_threads() == before
    assert map_processes(_probe, [], processes=None) == []


def test_worker_exception_propagates_with_its_traceback():
    # Also checks threads_per_process in the workers: the message names the thread count.
    with pytest.raises(ValueError, match="job 3 failed on purpose with 2 threads") as info:
        map_processes(_fail_on_three, range(6), processes=2, threads_per_process=2)
    remote = str(info.value.__cause__)
    assert "_fail_on_three" in remote and "Traceback" in remote
    with pytest.raises(ValueError, match="job 3"):
        map_processes(_fail_on_three, range(6), processes=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="processes=0"):
        map_processes(_probe, [1], processes=0)
    with pytest.raises(ValueError, match="threads_per_process=0"):
        map_processes(_probe, [1], threads_per_process=0)
    assert available_cpus() >= 1


@pytest.mark.slow
def test_from_a_script_with_a_main_guard(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os
            from fairdd.parallel import map_processes

            def job(seed):
                import torch
                g = torch.Generator().manual_seed(seed)
                return [seed, torch.randn(3, generator=g).sum().item(), torch.get_num_threads()]

            if __name__ == "__main__":
                print(json.dumps(map_processes(job, [0, 1, 2], processes=2)))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    expected = [torch.randn(3, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(3)]
    assert [o[0] for o in out] == [0, 1, 2] and [o[2] for o in out] == [1, 1, 1]
    assert [o[1] for o in out] == pytest.approx(expected)


@pytest.mark.slow
def test_from_a_jupyter_notebook(tmp_path):
    """A kernel (as papermill runs it) maps a function imported from a module by name."""
    (tmp_path / "jobs.py").write_text("import os\n\ndef job(x):\n    return [x * 10, os.getpid()]\n")
    code = textwrap.dedent(
        f"""
        import json, nbformat, nbclient
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell("import json, os, sys\\nsys.path.insert(0, {str(REPO_ROOT)!r})"),
            nbformat.v4.new_code_cell(
                "from fairdd.parallel import map_processes\\n"
                "from jobs import job\\n"
                "a = map_processes(job, [1, 2, 3], processes=2)\\n"
                "print(json.dumps({{'a': a, 'pid': os.getpid()}}))"
            ),
        ]
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={{"metadata": {{"path": {str(tmp_path)!r}}}}}).execute()
        print(nb.cells[1].outputs[0]["text"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [v for v, _ in out["a"]] == [10, 20, 30]
    assert out["pid"] not in {pid for _, pid in out["a"]}


def test_progress_without_a_stream_goes_to_the_progress_file(tmp_path, monkeypatch):
    from fairdd.parallel import job_progress

    log = tmp_path / "progress.log"
    monkeypatch.setenv("FAIRDD_PROGRESS", str(log))
    on_done = job_progress("KD teachers", 2, unit="teacher")
    on_done(1, None)
    on_done(0, None)
    lines = log.read_text().splitlines()
    assert lines[0] == "KD teachers: 2 teacher(s) to compute"
    assert lines[1].startswith("KD teachers: 1/2 teachers (50%)") and lines[2].startswith("KD teachers: 2/2 teachers (100%)")


def test_progress_without_a_stream_or_file_goes_to_standard_error(monkeypatch, capsys):
    from fairdd.parallel import Progress

    monkeypatch.delenv("FAIRDD_PROGRESS", raising=False)
    Progress("s")(0, 3)
    assert capsys.readouterr().err == "s: 3 run(s) to compute\n"
