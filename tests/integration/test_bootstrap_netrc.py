"""config/bootstrap.sh --token where the .netrc is not a plain file of its own: a symbolic link
(into a dotfiles directory, say), or a different file than the one an earlier run wrote to. In
both cases --uninstall could not put every byte and link back, so the script refuses before it
changes anything; the real proxy behind https is there so that the refusal is all that stops it."""

from __future__ import annotations

from test_auth import GOS
from test_bootstrap_token import CHECK_MODULE, Machine, assert_no_token, token_proxy  # noqa: F401


def test_a_symlinked_netrc_is_refused_and_left_a_link(token_proxy, pki, tmp_path):  # noqa: F811
    proxy, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", GOS["go1.23"], pki.bundle)
    dotfiles = machine.home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "netrc").write_text("machine git.example.com login me password kept\n")
    (dotfiles / "netrc").chmod(0o600)
    (machine.home / ".netrc").symlink_to("dotfiles/netrc")
    before = machine.snapshot()

    proc = machine.bootstrap("--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module",
                             CHECK_MODULE, "--token", token)
    assert proc.returncode == 1, proc.stdout
    assert_no_token(proc, token)
    assert f"error: {machine.home / '.netrc'} is a symbolic link" in proc.stdout
    assert "NETRC" in proc.stdout and "nothing was changed" in proc.stdout
    assert machine.snapshot() == before


def test_a_second_run_with_another_netrc_is_refused(token_proxy, pki, tmp_path):  # noqa: F811
    proxy, token, sumdb = token_proxy
    machine = Machine(tmp_path / "machine", GOS["go1.23"], pki.bundle)
    elsewhere = machine.home / "netrc-elsewhere"
    # The first run's login shells set NETRC, so the fresh shell the script checks in reads it.
    with (machine.home / ".profile").open("a") as profile:
        profile.write(f"export NETRC={elsewhere}\n")
    common = ["--proxy", proxy.url, "--sumdb", sumdb.vkey, "--check-module", CHECK_MODULE,
              "--token", token]
    before = machine.snapshot()
    proc = machine.bootstrap(*common, NETRC=str(elsewhere))
    assert proc.returncode == 0, proc.stdout
    configured = machine.snapshot()

    # Without NETRC the token would go to ~/.netrc, which --uninstall, knowing only the first
    # file, would leave holding it.
    proc = machine.bootstrap(*common)
    assert proc.returncode == 1, proc.stdout
    assert_no_token(proc, token)
    assert f"error: an earlier run wrote the token to {elsewhere}" in proc.stdout
    assert machine.snapshot() == configured

    proc = machine.bootstrap("--uninstall")
    assert proc.returncode == 0
    assert machine.snapshot() == before
