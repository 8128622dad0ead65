"""Raw text reads: every input line with the file it came from, nothing inferred."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

LINES_SCHEMA = "source_file string, line string"


def _with_source(text: DataFrame) -> DataFrame:
    return text.select(F.input_file_name().alias("source_file"), F.col("value").alias("line"))


def read_lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """(source_file, line) for every line of the given files; an empty frame for none."""
    if not files:
        return spark.createDataFrame([], LINES_SCHEMA)
    return _with_source(spark.read.text(files))


def read_glob_lines(spark: SparkSession, glob: str) -> tuple[DataFrame, int]:
    """(source_file, line) of the files matching `glob`, and how many files matched. A glob
    matching nothing is an empty input, not an error."""
    try:
        text = spark.read.text(glob)
    except AnalysisException as e:
        if "PATH_NOT_FOUND" not in str(e) and "Path does not exist" not in str(e):
            raise
        return spark.createDataFrame([], LINES_SCHEMA), 0
    # inputFiles() reuses the listing Spark just did: no second pass over S3.
    return _with_source(text), len(text.inputFiles())
