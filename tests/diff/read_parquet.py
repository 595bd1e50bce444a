"""Read a Parquet export with pyarrow, as an analytics tool would, and print what it holds as
JSON lines: first {"schema": [{"name", "type", "nullable"}...], "num_rows", "num_row_groups"}
with the Arrow types pyarrow reads (`int64`, `timestamp[ms, tz=UTC]`, `date32[day]`, ...), then
one object a row, column name -> value. Timestamps are printed as ISO 8601 with their offset,
dates as YYYY-MM-DD, the rest as JSON has them; a value JSON cannot hold (NaN, infinity) fails.

Usage: read_parquet.py FILE.parquet   (tests/it/parquet_py.rs runs it with the .venv-ci python)
"""
import datetime
import json
import sys

import pyarrow.parquet as pq


def plain(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} {value!r} has no JSON form")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    f = pq.ParquetFile(sys.argv[1])
    schema = f.schema_arrow
    head = {
        "schema": [
            {"name": fld.name, "type": str(fld.type), "nullable": fld.nullable}
            for fld in schema
        ],
        "num_rows": f.metadata.num_rows,
        "num_row_groups": f.metadata.num_row_groups,
    }
    out = sys.stdout
    out.write(json.dumps(head, allow_nan=False) + "\n")
    # A batch at a time: memory stays flat in the file's size.
    for batch in f.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            out.write(json.dumps(row, default=plain, allow_nan=False, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
