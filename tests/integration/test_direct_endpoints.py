"""What each endpoint of the `direct` tier answers, with the go command found on PATH (the shipped
default) against real git repositories on 127.0.0.1: lists (a repository without tags included),
@latest, revision queries (branch, full and short commit hash, version prefix), canonical .info, a
`/v2` major, a `+incompatible` version and an upper-case module path."""

from __future__ import annotations

import json

import direct_harness as dh
import git_repos as gr
import module_tree as mt
from git_server import GitServer

NOTAGS = f"{gr.PRIVATE_HOST}/team/notags"


def url(module_path: str, tail: str) -> str:
    return f"/{mt.escape_path(module_path)}/@{tail}"


def test_every_endpoint_answers_like_a_module_proxy(start_proxy, tmp_path):
    root = tmp_path / "repos"
    repos = gr.build_standard_repos(root)
    notags = gr.GitRepo(root, gr.PRIVATE_HOST, "team/notags")
    only_commit = notags.commit("untagged", {"go.mod": f"module {NOTAGS}\n\ngo 1.19\n",
                                             "notags.go": "package notags\n"})
    notags.finish()
    with GitServer(root) as server:
        proxy = start_proxy("off", "--private", f"{gr.PRIVATE_HOST}/*",
                            env=dh.proxy_env(server, tmp_path / "home", gr.PRIVATE_HOST))

        def text(module_path: str, tail: str) -> str:
            answer = proxy.get(url(module_path, tail), timeout=120)
            assert answer.status == 200, (module_path, tail, answer.text)
            return answer.text

        def version(module_path: str, tail: str) -> str:
            info = json.loads(text(module_path, tail))
            assert info["Time"].endswith("Z"), info
            return info["Version"]

        # A proxy lists every tag, retracted ones included; go hides those itself.
        assert text(gr.LIB, "v/list") == "v1.0.0\nv1.0.1\nv1.1.0\n"
        # No tag at all: an empty list, as proxy.golang.org answers, and a pseudo-version latest.
        assert text(NOTAGS, "v/list") == ""
        assert version(NOTAGS, "latest") == \
            f"v0.0.0-{only_commit.pseudo_time}-{only_commit.hash[:12]}"
        assert version(gr.LIB, "latest") == "v1.1.0"
        assert version(gr.LIB, "v/feature.info") == repos.lib_feature
        assert version(gr.LIB, f"v/{repos.feature_hash}.info") == repos.lib_feature
        assert version(gr.LIB, f"v/{repos.feature_hash[:12]}.info") == repos.lib_feature
        assert version(gr.LIB, "v/v1.info") == "v1.1.0"
        # v1.0.1 is retracted, so the go command's query for the v1.0 prefix picks v1.0.0.
        assert version(gr.LIB, "v/v1.0.info") == "v1.0.0"
        assert version(gr.LIB, "v/v1.1.0.info") == "v1.1.0"
        assert text(gr.LIB_V2, "v/list") == "v2.0.0\n"
        assert version(gr.LIB_V2, "latest") == "v2.0.0"
        assert text(gr.LIB_SUB, "v/list") == "v1.0.0\n"
        assert text(gr.INCOMPAT, "v/list") == f"{gr.INCOMPAT_VERSION}\n"
        assert version(gr.INCOMPAT, f"v/{gr.INCOMPAT_VERSION}.info") == gr.INCOMPAT_VERSION
        assert text(gr.UPPER, "v/list") == "v1.0.0\n"
        assert version(gr.UPPER, "v/v1.0.0.info") == "v1.0.0"

        missing = proxy.get(url(gr.LIB, "v/v9.9.9.info"), timeout=120)
        assert missing.status == 404, missing.text
        assert "direct: go list -m: " in missing.text and "unknown revision v9.9.9" in missing.text
