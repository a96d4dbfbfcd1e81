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

  {"op": "lambda_event", "records": [{"sequenceNumber": S, "approximateArrivalTimestamp": T, "partitionKey": P,
      "shardId": I, "data_hex": H | "user_records": [records as for "aggregate"]}]}
    -> first line: a Lambda Kinesis event (JSON) holding these records, in order; a record given by its user
       records holds their aggregate built by aws_kinesis_agg.aggregator, one given by data_hex those bytes;
       then one JSON line per user record that aws_kinesis_agg.deaggregator.deaggregate_records returns for
       that event: sequenceNumber, subSequenceNumber (null for a record passed through), aggregated,
       partitionKey, explicitHashKey (as reported), ownExplicitHashKey (the sub-record's own field, see above),
       approximateArrivalTimestamp, eventSource, eventSourceARN, eventID, awsRegion, data_hex.
"""

import base64
import json
import sys

from aws_kinesis_agg import MAX_BYTES_PER_RECORD
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import deaggregate_records, iter_deaggregate_records
from aws_kinesis_agg import messages_pb2  # importable once the package modules above have set sys.path
import aws_kinesis_agg


def aggregate_blob(name, records):
    aggregator = RecordAggregator(max_size=MAX_BYTES_PER_RECORD)
    for record in records:
        partition_key = bytes.fromhex(record["pk_hex"]).decode("utf-8")
        if aggregator.add_user_record(partition_key, bytes.fromhex(record["data_hex"]), record["ehk"]) is not None:
            raise SystemExit("%s: the user records do not fit one aggregated record" % name)
    return aggregator.clear_and_get().get_contents()[2]


def aggregate(cases):
    for case in cases:
        print("%s\t%s" % (case["name"], aggregate_blob(case["name"], case["records"]).hex()))


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


STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/golden"


def lambda_event(records):
    event_records = []
    blobs = {}
    for spec in records:
        if "user_records" in spec:
            blob = aggregate_blob(spec["sequenceNumber"], spec["user_records"])
        else:
            blob = bytes.fromhex(spec["data_hex"])
        blobs[spec["sequenceNumber"]] = blob
        event_records.append({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": spec["partitionKey"],
                "sequenceNumber": spec["sequenceNumber"],
                "data": base64.b64encode(blob).decode("ascii"),
                "approximateArrivalTimestamp": spec["approximateArrivalTimestamp"],
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": "%s:%s" % (spec["shardId"], spec["sequenceNumber"]),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion": "us-east-1",
            "eventSourceARN": STREAM_ARN,
        })
    event = {"Records": event_records}
    print(json.dumps(event))
    for user in deaggregate_records(json.loads(json.dumps(event))["Records"]):
        k = user["kinesis"]
        aggregated = bool(k.get("aggregated", False))
        sub = k.get("subSequenceNumber")
        own = own_explicit_hash_keys(blobs[k["sequenceNumber"]]) if aggregated else None
        data = k["data"]
        print(json.dumps({
            "sequenceNumber": k["sequenceNumber"],
            "subSequenceNumber": sub,
            "aggregated": aggregated,
            "partitionKey": k["partitionKey"],
            "explicitHashKey": k.get("explicitHashKey"),
            "ownExplicitHashKey": own[sub] if own is not None else None,
            "approximateArrivalTimestamp": k["approximateArrivalTimestamp"],
            "eventSource": user.get("eventSource"),
            "eventSourceARN": user.get("eventSourceARN"),
            "eventID": user.get("eventID"),
            "awsRegion": user.get("awsRegion"),
            "data_hex": base64.b64decode(data).hex(),
        }))


def main():
    request = json.load(sys.stdin)
    if request["op"] == "aggregate":
        aggregate(request["cases"])
    elif request["op"] == "deaggregate":
        deaggregate(request["blobs"])
    elif request["op"] == "lambda_event":
        lambda_event(request["records"])
    else:
        raise SystemExit("unknown op %r" % request["op"])


if __name__ == "__main__":
    main()
