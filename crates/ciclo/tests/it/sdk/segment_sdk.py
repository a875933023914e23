"""Sends events to ciclo with Segment's official Python SDK (segment-analytics-python), unchanged,
pointed at ciclo's host. Used by the Rust test `sdk::official_segment_sdk_works_unchanged`."""
import os
import sys

try:
    from segment.analytics import Client
except ImportError:
    print("segment-analytics-python is missing: pip install -r .ci/requirements.txt", file=sys.stderr)
    sys.exit(3)

errors = []


def on_error(error, batch):
    errors.append(f"{error} ({len(batch)} messages)")


host = os.environ["CICLO_URL"]
write_key = os.environ["CICLO_WRITE_KEY"]

# One message per request, gzip bodies.
sync = Client(write_key=write_key, host=host, sync_mode=True, gzip=True, on_error=on_error, max_retries=0)
sync.identify("sdk-user-1", {"email": "sofia.sdk@loja.com.br", "firstName": "Sofia", "lastName": "Dias", "plan": "ouro"})
sync.track(
    "sdk-user-1",
    "Order Completed",
    {
        "order_id": "sdk-order-1",
        "total": 99.9,
        "currency": "BRL",
        "products": [{"product_id": "p1", "name": "Caneca", "price": 99.9, "quantity": 1}],
    },
)
sync.page("sdk-user-1", "Loja", "Home", {"url": "https://loja.example/"})

# The default mode: a background thread batches messages to /v1/batch.
batched = Client(write_key=write_key, host=host, on_error=on_error, max_retries=0, upload_size=10)
for i in range(25):
    batched.track("sdk-user-1", "Product Viewed", {"product_id": f"p{i}", "channel": "web"})
batched.flush()
batched.join()

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("sent")
