"""The fills, checks and reads pools at their smallest (one thread each): a verified fill of the
40 MiB zip, requested by several clients at once while warm files are asked for, is checked,
hashed, committed once and streamed whole, and warm zips stream while it runs. A check that
waited for a read (or a read for a check) would hang here."""

import concurrent.futures
import hashlib

import module_tree as mt


def test_one_thread_per_pool_fills_verifies_and_streams(tree, make_upstream, make_sumdb,
                                                         start_proxy):
    upstream = make_upstream(tree.root)
    sumdb = make_sumdb(tree.root)
    proxy = start_proxy(upstream.url, *sumdb.flags, "--fill-threads", "1", "--check-threads", "1",
                        "--read-threads", "1")
    big_zip = tree.get(mt.BIG, "v1.0.0").url_path(".zip")
    hello_zip = tree.get(mt.HELLO, "v1.2.0").url_path(".zip")
    hello_info = tree.get(mt.HELLO, "v1.2.0").url_path(".info")
    assert proxy.get(hello_zip, timeout=60).status == 200  # now warm
    assert proxy.get(hello_info, timeout=60).status == 200

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        cold = [pool.submit(proxy.get, big_zip, timeout=120) for _ in range(3)]
        warm = [pool.submit(proxy.get, path, timeout=120)
                for path in (hello_zip, hello_info, hello_zip)]
        warm_answers = [f.result() for f in warm]
        cold_answers = [f.result() for f in cold]

    for answer, path in zip(warm_answers, (hello_zip, hello_info, hello_zip)):
        assert answer.status == 200 and answer.body == tree.file_bytes(path)
    want = hashlib.sha256(tree.file_bytes(big_zip)).hexdigest()
    for answer in cold_answers:
        assert answer.status == 200, answer.text
        assert hashlib.sha256(answer.body).hexdigest() == want
    assert upstream.count(big_zip) == 1
    again = proxy.get(big_zip, timeout=120)  # from the cache, through the one reads thread
    assert again.status == 200 and hashlib.sha256(again.body).hexdigest() == want
    assert upstream.count(big_zip) == 1
