"""Tests that do not leak, for the leakdiff pytest plugin's end-to-end test:
every one must pass under --leakdiff.  They use the parts of the standard
library that fill caches, freelists and registries on their own."""
import asyncio
import collections
import datetime
import decimal
import fractions
import functools
import io
import json
import logging
import os
import re
import tempfile
import threading
import warnings

import pytest

log = logging.getLogger("fixture.clean")


# -- re ------------------------------------------------------------------------

def test_re_match():
    assert re.match(r"(\d+)-(\d+)", "12-34").groups() == ("12", "34")


def test_re_compile_fresh_pattern():
    pattern = re.compile(r"[a-z]+_%d" % 7)
    assert pattern.findall("ab_7 cd_7") == ["ab_7", "cd_7"]


def test_re_sub_with_function():
    assert re.sub(r"\d", lambda m: str(int(m.group()) * 2), "a1b2") == "a2b4"


@pytest.mark.parametrize("text,count", [("a,b,c", 3), ("", 1), ("x,,y", 3)])
def test_re_split(text, count):
    assert len(re.split(",", text)) == count


def test_re_finditer_named_groups():
    found = [m.groupdict() for m in re.finditer(r"(?P<k>\w+)=(?P<v>\w+)", "a=1 b=2")]
    assert found == [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]


# -- logging --------------------------------------------------------------------

def test_logging_to_module_logger():
    log.info("a message %d", 3)


def test_logging_with_handler():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    try:
        log.warning("seen %s", "here")
    finally:
        log.removeHandler(handler)
    assert "seen here" in stream.getvalue()


def test_logging_exception():
    try:
        raise ValueError("logged")
    except ValueError:
        log.exception("failed")


def test_logging_caplog(caplog):
    with caplog.at_level(logging.INFO, logger="fixture.clean"):
        log.info("captured")
    assert "captured" in caplog.text


def test_logging_fixed_child_logger():
    logging.getLogger("fixture.clean.child").debug("same logger every run")


# -- json -------------------------------------------------------------------------

def test_json_round_trip():
    doc = {"a": [1, 2, {"b": None}], "c": "d"}
    assert json.loads(json.dumps(doc)) == doc


def test_json_pretty():
    assert "\n" in json.dumps({"a": 1, "b": [1, 2]}, indent=2, sort_keys=True)


def test_json_decode_error():
    with pytest.raises(json.JSONDecodeError):
        json.loads("{bad")


@pytest.mark.parametrize("value", [0, 1.5, "text", [1], {"k": "v"}, None, True])
def test_json_values(value):
    assert json.loads(json.dumps(value)) == value


# -- decimal and fractions -----------------------------------------------------------

def test_decimal_arithmetic():
    assert decimal.Decimal("1.10") + decimal.Decimal("2.20") == decimal.Decimal("3.30")


def test_decimal_local_context():
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        assert str(decimal.Decimal(1) / decimal.Decimal(7)) == "0.14286"


def test_decimal_quantize():
    assert decimal.Decimal("2.675").quantize(decimal.Decimal("0.01")) == decimal.Decimal("2.68")


def test_fractions():
    assert fractions.Fraction(1, 3) + fractions.Fraction(1, 6) == fractions.Fraction(1, 2)


# -- datetime --------------------------------------------------------------------

def test_datetime_now_utc():
    assert datetime.datetime.now(datetime.timezone.utc).tzinfo is datetime.timezone.utc


def test_datetime_strptime():
    assert datetime.datetime.strptime("2026-12-07", "%Y-%m-%d").day == 7


def test_datetime_arithmetic():
    start = datetime.date(2026, 1, 31)
    assert (start + datetime.timedelta(days=1)).month == 2


def test_datetime_isoformat():
    moment = datetime.datetime(2026, 12, 7, 4, 30, tzinfo=datetime.timezone.utc)
    assert datetime.datetime.fromisoformat(moment.isoformat()) == moment


# -- asyncio -----------------------------------------------------------------------

async def _double(x):
    await asyncio.sleep(0)
    return x * 2


def test_asyncio_run():
    assert asyncio.run(_double(21)) == 42


def test_asyncio_gather():
    async def main():
        return await asyncio.gather(*(_double(i) for i in range(5)))
    assert asyncio.run(main()) == [0, 2, 4, 6, 8]


def test_asyncio_queue():
    async def main():
        q = asyncio.Queue()
        for i in range(10):
            q.put_nowait(i)
        return [q.get_nowait() for _ in range(10)]
    assert asyncio.run(main()) == list(range(10))


def test_asyncio_timeout():
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1), 0.001)
    asyncio.run(main())


def test_asyncio_task_cancel():
    async def main():
        task = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())


# -- threading -------------------------------------------------------------------

def test_thread_join():
    out = []
    t = threading.Thread(target=out.append, args=(1,))
    t.start()
    t.join()
    assert out == [1]


def test_threads_with_lock():
    lock = threading.Lock()
    total = [0]

    def work():
        for _ in range(100):
            with lock:
                total[0] += 1
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert total[0] == 400


def test_thread_event():
    ready = threading.Event()
    t = threading.Thread(target=ready.set)
    t.start()
    assert ready.wait(5)
    t.join()


def test_thread_local():
    local = threading.local()
    local.value = 3
    assert local.value == 3


# -- tempfile and files -----------------------------------------------------------

def test_tempfile_named():
    with tempfile.NamedTemporaryFile("w+") as f:
        f.write("data")
        f.seek(0)
        assert f.read() == "data"


def test_tempdir():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.txt")
        with open(path, "w") as f:
            f.write("x")
        assert os.listdir(d) == ["x.txt"]


def test_tmp_path_fixture(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_spooled_tempfile():
    with tempfile.SpooledTemporaryFile(max_size=10) as f:
        f.write(b"0123456789abcdef")
        f.seek(0)
        assert f.read() == b"0123456789abcdef"


# -- warnings -------------------------------------------------------------------

def test_warns():
    with pytest.warns(UserWarning, match="careful"):
        warnings.warn("careful", UserWarning)


def test_warnings_catch():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.warn("again", DeprecationWarning)
    assert len(seen) == 1


def test_warning_ignored():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.warn("ignored", RuntimeWarning)


# -- exceptions -----------------------------------------------------------------

def test_raises():
    with pytest.raises(ZeroDivisionError):
        1 / 0


def test_exception_chain():
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError as exc:
        assert isinstance(exc.__cause__, KeyError)


def test_exception_group_of_errors():
    errors = []
    for i in range(5):
        try:
            int("x%d" % i)
        except ValueError as exc:
            errors.append(str(exc))
    assert len(errors) == 5


def test_custom_exception():
    class Failure(Exception):
        pass
    with pytest.raises(Failure):
        raise Failure("custom")


# -- collections, functools, classes ------------------------------------------------

def test_counter():
    assert collections.Counter("abracadabra").most_common(1) == [("a", 5)]


def test_namedtuple_instances():
    Point = collections.namedtuple("Point", "x y")
    assert Point(1, 2).x == 1


def test_bounded_lru_cache():
    @functools.lru_cache(maxsize=8)
    def square(n):
        return n * n
    assert [square(i % 4) for i in range(20)][-1] == 9


def test_partial():
    assert functools.partial(int, base=2)("101") == 5


@pytest.fixture
def records():
    return [{"id": i} for i in range(50)]


def test_function_fixture(records):
    assert sum(r["id"] for r in records) == 1225


class TestClassBased:
    def test_method(self):
        assert "x".upper() == "X"

    def test_method_with_dict(self):
        d = dict.fromkeys(range(100))
        assert len(d) == 100

    @pytest.mark.parametrize("n", [1, 10, 100])
    def test_parametrized_method(self, n):
        assert len(list(range(n))) == n


def test_big_temporary_allocation():
    data = [bytes(100) for _ in range(10000)]
    assert len(data) == 10000


def test_string_building():
    parts = ["%d" % i for i in range(1000)]
    assert len(",".join(parts)) > 1000


@pytest.mark.leakdiff(repeat=6)
def test_marker_repeat():
    assert sorted({3, 1, 2}) == [1, 2, 3]
