"""A jobworker client in Python (Debian's python3-grpcio, gRPC C-core): a
second gRPC implementation talking to jobworkerd over mTLS. The stubs are
generated from proto/ at test time into GEN_DIR (see interop.test.ts).

usage: client.py GEN_DIR HOST:PORT CERTS_DIR USER JOB_ID
Prints one JSON object: the GetJob result and the followed StreamOutput.
"""
import hashlib
import json
import sys

gen_dir, address, certs, user, job_id = sys.argv[1:6]
sys.path.insert(0, gen_dir)

import grpc  # noqa: E402
from jobworker.v1 import job_service_pb2 as pb  # noqa: E402
from jobworker.v1 import job_service_pb2_grpc as pb_grpc  # noqa: E402


def read(name):
    with open(f"{certs}/{name}", "rb") as f:
        return f.read()


credentials = grpc.ssl_channel_credentials(
    root_certificates=read("ca.crt"),
    private_key=read(f"{user}.key"),
    certificate_chain=read(f"{user}.crt"),
)
# Dial the loopback address but verify the name the server certificate carries.
options = [("grpc.ssl_target_name_override", "localhost")]
with grpc.secure_channel(address, credentials, options=options) as channel:
    stub = pb_grpc.JobServiceStub(channel)
    job = stub.GetJob(pb.GetJobRequest(job_id=job_id), timeout=30).job
    digest = hashlib.sha256()
    stdout_bytes = 0
    finished = None
    for message in stub.StreamOutput(pb.StreamOutputRequest(job_id=job_id, follow=True), timeout=60):
        kind = message.WhichOneof("event")
        if kind == "chunk" and message.chunk.stream == pb.OUTPUT_STREAM_STDOUT:
            digest.update(message.chunk.data)
            stdout_bytes += len(message.chunk.data)
        elif kind == "finished":
            finished = message.finished
    try:
        stub.GetJob(pb.GetJobRequest(job_id="not a job id"), timeout=30)
        invalid = None
    except grpc.RpcError as err:
        trailers = dict(err.trailing_metadata() or ())
        invalid = {"code": err.code().name, "error_code": trailers.get("jobworker-error-code")}
    print(
        json.dumps(
            {
                "owner": job.owner,
                "command": list(job.command),
                "stdout_bytes": stdout_bytes,
                "stdout_sha256": digest.hexdigest(),
                "finished_exit_code": finished.exit_code if finished is not None else None,
                "finished_state": pb.JobState.Name(finished.state) if finished is not None else None,
                "invalid": invalid,
            }
        )
    )
