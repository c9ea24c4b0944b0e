"""Sends one of each Segment call through a real SDK to a collector.

    send_events.py segment|rudder HOST WRITE_KEY RUN_ID

Prints the messageIds it sent, one per line, and exits non-zero if the SDK reported
an error. The SDKs come from PyPI (segment-analytics-python, rudder-sdk-python) and
are used exactly as their documentation shows, pointed at the collector.
"""
import sys

which, host, write_key, run_id = sys.argv[1:5]
errors = []

if which == "segment":
    import segment.analytics as analytics
    analytics.write_key = write_key
    analytics.host = host
else:
    import rudderstack.analytics as analytics
    analytics.write_key = write_key
    analytics.dataPlaneUrl = host

analytics.on_error = lambda error, items: errors.append(str(error))
analytics.max_retries = 2

sent = []
def mid(kind):
    m = f"{which}-{run_id}-{kind}"
    sent.append(m)
    return m

analytics.identify("user-1", {"email": "ada@example.com", "plan": "pro"}, message_id=mid("identify"))
analytics.track("user-1", "Order Completed", {"revenue": 42.5, "currency": "EUR"}, message_id=mid("track"))
analytics.page("user-1", "Docs", "Getting Started", {"url": "https://example.com/docs"}, message_id=mid("page"))
analytics.screen("user-1", "App", "Home", {"build": 7}, message_id=mid("screen"))
analytics.group("user-1", "group-9", {"name": "Acme"}, message_id=mid("group"))
analytics.alias("user-1", "user-1-new", message_id=mid("alias"))
analytics.flush()
analytics.join()

for m in sent:
    print(m)
if errors:
    print("SDK errors: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
