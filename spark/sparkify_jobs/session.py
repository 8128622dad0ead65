"""SparkSession creation and the settings every run depends on."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from py4j.java_gateway import JavaClass, JavaMember
from pyspark import SparkConf, StorageLevel
from pyspark.sql import DataFrame, SparkSession

SHUFFLE_PARTITIONS_ENV = "SPARKIFY_SHUFFLE_PARTITIONS"


# Classes pyspark reaches through the JVM view on every call (each F.* function, each list of
# columns): py4j asks the JVM what the name is, then whether the class has that member, two
# round trips before the call itself, and a simple name is tried in each of pyspark's
# package imports in turn (each miss a scan of the class path).
_STATIC_CLASSES = ("org.apache.spark.sql.functions", "org.apache.spark.api.python.PythonUtils")


class _StaticMethods:
    """A JVM class whose static methods are looked up once, not on every call."""

    def __init__(self, cls: JavaClass):
        self._cls = cls

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._cls, name)
        if isinstance(member, JavaMember):  # a method; a field's value is read each time
            self.__dict__[name] = member
        return member


def configure(spark: SparkSession) -> SparkSession:
    """Settings that decide correctness, applied to any session (ours or a test's), and the
    lookups pyspark repeats on every call made once."""
    jvm = spark.sparkContext._jvm
    for fqn in _STATIC_CLASSES:
        # JVMView resolves names in __getattr__: one in its __dict__ never reaches the JVM.
        jvm.__dict__[fqn.rsplit(".", 1)[1]] = _StaticMethods(JavaClass(fqn, jvm._gateway_client))
    # Partition keys, hour/day/week and the UTC-day checks all use the session time zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # INT96 (Spark's default) is deprecated and read back as a naive timestamp by pyarrow and
    # DuckDB; TIMESTAMP_MICROS is marked as UTC-adjusted, which is what start_time is.
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    conf = spark.sparkContext.getConf()
    if not conf.contains("spark.sql.shuffle.partitions"):
        # Spark's 200 is far too many for a day of events; an explicit --conf still wins.
        default = max(4, 2 * spark.sparkContext.defaultParallelism)
        spark.conf.set(
            "spark.sql.shuffle.partitions", os.environ.get(SHUFFLE_PARTITIONS_ENV, str(default))
        )
    return spark


def stop(spark: SparkSession) -> None:
    """Stops a session whose process is about to exit, without waiting for pyspark's
    accumulator server. SparkContext.stop shuts that server down and joins it, and its handler
    polls its connection once a second: every run ended with up to a second of waiting (0.9 s
    measured on the 14-day full build). The server still shuts down, on a daemon thread that
    the exit does not wait for."""
    sc = spark.sparkContext
    server = getattr(sc, "_accumulatorServer", None)
    sc._accumulatorServer = None  # pyspark's stop skips what it does not find
    try:
        spark.stop()
    finally:
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()


# A local job (its input, lake and report all on the local filesystem) writes through
# Hadoop's raw local filesystem, not its checksummed one: no `.crc` file beside each file
# written. Readers of the lake (Spark, pyarrow, DuckDB) never check them, and each is one more
# file to create and, without Hadoop's native library, one more `chmod` process forked: the
# 14-day full build wrote 96 of them beside 97 files. Uncached, because spark-submit has often
# made the checksummed one already (--py-files), and Hadoop caches a filesystem per scheme
# whatever the configuration asking. Only where nothing goes to S3: S3A buffers its uploads
# through `FileSystem.getLocal`, which casts to the checksummed class (so do SparkContext's
# RDD file readers, which the jobs do not use).
LOCAL_FS_IMPL = {
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "spark.hadoop.fs.file.impl.disable.cache": "true",
}


def create(uris: Sequence[str] = ()) -> SparkSession:
    """The job's session; `uris`: every location it reads or writes (see LOCAL_FS_IMPL)."""
    builder = SparkSession.builder.appName("sparkify-lake").config(
        "spark.sql.session.timeZone", "UTC"
    )
    return configure(builder.config(map=local_fs_settings(uris, SparkConf())).getOrCreate())


def local_fs_settings(uris: Sequence[str], submitted: SparkConf) -> dict[str, str]:
    """LOCAL_FS_IMPL where every one of `uris` is local and the submitter set neither."""
    local = bool(uris) and all(u.startswith("file:") for u in uris)
    if not local or any(submitted.contains(k) for k in LOCAL_FS_IMPL):
        return {}
    return dict(LOCAL_FS_IMPL)


# Below this much input a query's fixed costs dominate: fewer partitions, no adaptive
# re-planning between stages and no code generation make it cheaper (above, they pay).
SMALL_INPUT_BYTES = 256 * 2**20
CODEGEN_FACTORY_MODE = "spark.sql.codegen.factoryMode"
# A shuffle's partition is a task of the stage after it, and most of a run's writes end in one
# such stage (sort, audit, Parquet): two weeks of events (31 MB) as two tasks instead of one
# built 5.6% faster on 2 cores (8 alternating pairs, run.py); a day's events stay one task.
BYTES_PER_PARTITION = 16 * 2**20
# Interpreted expressions are cheap only where the JIT's C2 compiler optimises the interpreter's
# calls. A driver whose JIT stops at C1 (the local EMR's: it starts faster) runs them much
# slower: measured there, generated code wins from a few days of events on (14 days, 31 MB:
# 28-32 s against 35-38 s; 4 days, 9 MB, even; one day, 2 MB: 19-21 s interpreted against 20-22 s).
SMALL_INPUT_BYTES_C1 = 8 * 2**20


def jit_stops_at_c1(spark: SparkSession) -> bool:
    """Whether the driver's JIT compiles with C1 only (-XX:TieredStopAtLevel below 4)."""
    jvm = spark.sparkContext._jvm
    try:
        bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
            jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
        )
        return int(bean.getVMOption("TieredStopAtLevel").getValue()) < 4
    except Exception:  # not HotSpot: no such option, and no reason to think C2 is missing
        return False


def expression_codegen(input_bytes: int, c1_only: bool) -> str:
    """spark.sql.codegen.factoryMode for an input of this size on this JIT."""
    small = input_bytes < (SMALL_INPUT_BYTES_C1 if c1_only else SMALL_INPUT_BYTES)
    return "NO_CODEGEN" if small else "FALLBACK"


def tune_for_input(spark: SparkSession, input_bytes: int) -> None:
    """Shuffle partitions and adaptive execution chosen from the input's size, unless the
    submitter set them (an explicit --conf always wins)."""
    conf = spark.sparkContext.getConf()
    parallelism = spark.sparkContext.defaultParallelism
    small = input_bytes < SMALL_INPUT_BYTES
    if not conf.contains("spark.sql.adaptive.enabled"):
        spark.conf.set("spark.sql.adaptive.enabled", str(not small).lower())
    if not conf.contains("spark.sql.codegen.wholeStage"):
        # Compiling generated code costs more than it saves on a day of events.
        spark.conf.set("spark.sql.codegen.wholeStage", str(not small).lower())
    if not conf.contains(CODEGEN_FACTORY_MODE):
        # The same for the code Spark generates per expression (projections, predicates,
        # orderings) even without whole-stage codegen: on small inputs its interpreted
        # versions are cheaper than compiling each class with Janino and then by the JVM's JIT
        # (measured on the 14-day bench: ~5 of ~55 CPU seconds), unless the JIT has no C2.
        # FALLBACK is Spark's default.
        mode = expression_codegen(input_bytes, jit_stops_at_c1(spark))
        spark.conf.set(CODEGEN_FACTORY_MODE, mode)
    explicit = conf.contains("spark.sql.shuffle.partitions") or SHUFFLE_PARTITIONS_ENV in os.environ
    if not explicit:
        spark.conf.set(
            "spark.sql.shuffle.partitions", str(shuffle_partitions(input_bytes, parallelism))
        )


def shuffle_partitions(input_bytes: int, parallelism: int) -> int:
    """One per BYTES_PER_PARTITION of input, at least one, at most two per core."""
    return max(1, min(-(-input_bytes // BYTES_PER_PARTITION), 2 * parallelism))


def cache_level(spark: SparkSession, input_bytes: int) -> StorageLevel:
    """Where an input read several times is kept: in memory while it is small beside the
    JVM's heap, else on local disk. Spark's estimate of a cached columnar block undercounts
    the heap it holds: 30 days of 100,000 events (1.3 GB) cached in memory ran a 1 GiB
    driver out of heap while the estimate said 180 MiB of 434 were used, and falling back to
    disk never came. On disk the blocks are written batch by batch and read back from the
    page cache. In memory, where tasks run in the driver, means the rows themselves (`keep`):
    larger than the compressed columns (the 14-day build's peak RSS 1.24 times the monolith's), but
    sized object by object by Spark, so a block that does not fit goes to disk."""
    heap = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()
    if input_bytes <= heap // IN_MEMORY_CACHE_HEAP_SHARE:
        return StorageLevel.MEMORY_AND_DISK
    return StorageLevel.DISK_ONLY


# An input is cached in memory up to this share of the heap (1/8: 128 MiB of a 1 GiB one).
IN_MEMORY_CACHE_HEAP_SHARE = 8


# A local master runs every task in the driver's JVM: `local`, `local[N]`, `local[*]`,
# `local[N,F]` (not `local-cluster`, whose executors are JVMs of their own).
_IN_DRIVER_MASTER = re.compile(r"local(\[[^\]]*\])?")


def tasks_run_in_driver(master: str) -> bool:
    return _IN_DRIVER_MASTER.fullmatch(master) is not None


def keep(
    df: DataFrame, level: StorageLevel, rows: bool = True
) -> tuple[DataFrame, Callable[[], object]]:
    """`df`, kept where it was first computed for the later queries of the run, and how to let
    it go.

    As its rows (a local checkpoint) where the tasks run in the driver, the level allows memory
    (the input is small beside the heap, `cache_level`) and the caller knows the frame to be of
    a run's size (`rows`; not a whole lake table the warehouse loads, whose rows could outgrow
    the heap where its columnar cache would not). Building and scanning Spark's columnar cache
    cost more CPU than the queries that read it back on a run's sizes (its encoders hash every
    value of every column, and each scan decodes the batches again), and the later queries plan
    over a leaf instead of the whole parse. A local checkpoint cannot be recomputed once
    computed, so on a cluster, where an executor and its blocks can be lost, and on disk, the
    columnar cache stays."""
    if rows and level.useMemory and tasks_run_in_driver(df.sparkSession.sparkContext.master):
        kept = df.localCheckpoint(eager=False)
        rdd = kept._jdf.queryExecution().logical().rdd()
        return kept, lambda: rdd.unpersist(False)
    cached = df.persist(level)
    return cached, cached.unpersist
