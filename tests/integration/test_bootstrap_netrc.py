"""config/bootstrap.sh --token where the .netrc is a symbolic link (into a dotfiles directory,
say): --uninstall could not put the link back, so the script refuses before it changes anything;
the real proxy behind https is there so that the refusal is all that stops it."""

from __future__ import annotations

from test_auth import GOS
from test_bootstrap_token import CHECK_MODULE, Machine, assert_no_token, token_proxy  # noqa: F401


def test_a_symlinked_netrc_is_refused_and_left_a_link(token_proxy, test_ca, tmp_path):  # noqa: F811
    front, _, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", GOS["go1.23"], test_ca.bundle)
    dotfiles = machine.home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "netrc").write_text("machine git.example.com login me password kept\n")
    (dotfiles / "netrc").chmod(0o600)
    (machine.home / ".netrc").symlink_to("dotfiles/netrc")
    before = machine.snapshot()

    proc = machine.bootstrap("--proxy", front.url, "--sumdb", sumdb.vkey, "--check-module",
                             CHECK_MODULE, "--token", token)
    assert proc.returncode == 1, proc.stdout
    assert_no_token(proc, token)
    assert f"error: {machine.home / '.netrc'} is a symbolic link" in proc.stdout
    assert "NETRC" in proc.stdout and "nothing was changed" in proc.stdout
    assert machine.snapshot() == before

