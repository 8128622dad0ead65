"""Raw text reads: every input line with the file it came from, nothing inferred."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import AnalysisException

LINES_SCHEMA = T.StructType(
    [T.StructField("source_file", T.StringType()), T.StructField("line", T.StringType())]
)


def no_rows(spark: SparkSession, schema: T.StructType) -> DataFrame:
    """An empty frame of `schema`, made in the JVM alone. pyspark's createDataFrame of a list
    reaches the JVM through a Python worker: a full build, which needs none otherwise, waited
    about a second for one to start (its first users state is the union of nothing
    published and the run's days). Not `spark.range(0)` either: the first typed Dataset of a
    session starts Scala's runtime reflection for its encoder, 0.7-1 s measured on this
    machine's full build; the empty DataFrame is untyped."""
    empty = DataFrame(spark._jsparkSession.emptyDataFrame(), spark)
    return empty.select(*(F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields))


def values(spark: SparkSession, name: str, items: list[str]) -> DataFrame:
    """(name string) with one row per item, made in the JVM alone (see `no_rows`)."""
    if not items:
        return no_rows(spark, T.StructType([T.StructField(name, T.StringType())]))
    # One row of no columns, untyped (SQL's SELECT without FROM), exploded into the items.
    one = spark.sql("SELECT 1 AS _one")
    return one.select(F.explode(F.array(*(F.lit(i) for i in items))).alias(name))


def _with_source(text: DataFrame) -> DataFrame:
    return text.select(F.input_file_name().alias("source_file"), F.col("value").alias("line"))


def read_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """(source_file, line) for every line of the given files; an empty frame for none."""
    if not files:
        return no_rows(spark, LINES_SCHEMA)
    return _with_source(spark.read.text(files))


# Spark lists more than this many paths (a glob's matches) with a Spark job, one task a path.
_DISCOVERY_THRESHOLD = "spark.sql.sources.parallelPartitionDiscovery.threshold"


def read_glob_lines(spark: SparkSession, glob: str) -> tuple[DataFrame, int, int]:
    """(source_file, line) of the files matching `glob`, how many files matched and their
    bytes. A glob matching nothing is an empty input, not an error."""
    # Each file a glob matches is a root path of the scan, and Spark lists more than 32 of them
    # with a job of one task per file: 200 song files cost a 200-task job (~3.5 s on 2 cores).
    # On a local filesystem listing a file on the driver costs microseconds, so it is done
    # there; on S3 (a request per file) the parallel listing stays.
    conf = spark.sparkContext.getConf()
    local = glob.startswith("file:") and not conf.contains(_DISCOVERY_THRESHOLD)
    before = spark.conf.get(_DISCOVERY_THRESHOLD)
    try:
        if local:
            spark.conf.set(_DISCOVERY_THRESHOLD, str(2**31 - 1))
        text = spark.read.text(glob)
    except AnalysisException as e:
        if "PATH_NOT_FOUND" not in str(e) and "Path does not exist" not in str(e):
            raise
        return no_rows(spark, LINES_SCHEMA), 0, 0
    finally:
        if local:
            spark.conf.set(_DISCOVERY_THRESHOLD, before)
    # inputFiles() and the plan's size reuse the listing Spark just did: no second pass over S3.
    size = int(text._jdf.queryExecution().analyzed().stats().sizeInBytes())
    # len() of the Java array is one call; list(inputFiles()) would be one per file.
    return _with_source(text), len(text._jdf.inputFiles()), size
