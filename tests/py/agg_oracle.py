"""Reference oracle for the KPL aggregation format, backed by aws-kinesis-agg (PyPI).

Reads one JSON request on stdin and prints tab-separated lines on stdout:

  {"op": "aggregate", "cases": [{"name": N, "records": [{"pk_hex": H, "ehk": "123" | null, "data_hex": H}]}]}
    -> one line per case:  N <TAB> hex of the aggregated record built by aws_kinesis_agg.aggregator

  {"op": "deaggregate", "blobs": [{"name": N, "hex": H}]}
    -> one line per user record that aws_kinesis_agg.deaggregator yields:
       N <TAB> subSequenceNumber <TAB> aggregated (0/1) <TAB> partition key hex <TAB> explicit hash key
         (from the sub-record's own explicit_hash_key_index, "-" if it has none) <TAB> explicit hash key as
         the deaggregator reports it ("-" for None) <TAB> data hex

The deaggregator reports ehks[0] for a sub-record without an explicit hash key whenever the aggregate's table
is non-empty (_create_user_record reads the proto2 default index 0), so the sub-record's own field is printed
too, read with the package's messages_pb2. Plain (non-aggregated) records are delivered with the outer
partition key "outer".
"""

import base64
import json
import sys

from aws_kinesis_agg import MAX_BYTES_PER_RECORD
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from aws_kinesis_agg import messages_pb2  # importable once the package modules above have set sys.path
import aws_kinesis_agg


def aggregate(cases):
    for case in cases:
        aggregator = RecordAggregator(max_size=MAX_BYTES_PER_RECORD)
        for record in case["records"]:
            partition_key = bytes.fromhex(record["pk_hex"]).decode("utf-8")
            data = bytes.fromhex(record["data_hex"])
            full = aggregator.add_user_record(partition_key, data, record["ehk"])
            if full is not None:
                raise SystemExit("case %s does not fit one aggregated record" % case["name"])
        agg = aggregator.clear_and_get()
        _pk, _ehk, blob = agg.get_contents()
        print("%s\t%s" % (case["name"], blob.hex()))


def own_explicit_hash_keys(blob):
    """The explicit hash key of each sub-record per its own optional field, or None if not aggregated."""
    magic = aws_kinesis_agg.MAGIC
    if len(blob) <= len(magic) + aws_kinesis_agg.DIGEST_SIZE or blob[:len(magic)] != magic:
        return None
    message = messages_pb2.AggregatedRecord()
    try:
        message.ParseFromString(blob[len(magic):-aws_kinesis_agg.DIGEST_SIZE])
    except Exception:
        return None
    table = message.explicit_hash_key_table
    return [table[r.explicit_hash_key_index] if r.HasField("explicit_hash_key_index") else None
            for r in message.records]


def deaggregate(blobs):
    for blob in blobs:
        raw = bytes.fromhex(blob["hex"])
        kinesis_record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                "approximateArrivalTimestamp": 1700000000.0,
                "partitionKey": "outer",
                "data": base64.b64encode(raw).decode("ascii"),
            }
        }
        own = own_explicit_hash_keys(raw)
        for user in iter_deaggregate_records([kinesis_record]):
            k = user["kinesis"]
            aggregated = bool(k.get("aggregated", False))
            sub = int(k.get("subSequenceNumber", 0))
            data = base64.b64decode(k["data"])
            reported = k.get("explicitHashKey")
            field = own[sub] if aggregated and own is not None else None
            print("\t".join([
                blob["name"], str(sub), "1" if aggregated else "0",
                k["partitionKey"].encode("utf-8").hex(),
                "-" if field is None else field,
                "-" if reported is None else reported,
                data.hex(),
            ]))


def main():
    request = json.load(sys.stdin)
    if request["op"] == "aggregate":
        aggregate(request["cases"])
    elif request["op"] == "deaggregate":
        deaggregate(request["blobs"])
    else:
        raise SystemExit("unknown op %r" % request["op"])


if __name__ == "__main__":
    main()
