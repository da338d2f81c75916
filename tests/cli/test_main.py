import subprocess
import sys

from ovfer.cli.__main__ import VERBS, main


def test_help_lists_all_verbs(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "ovfer.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "predict" in r.stdout
