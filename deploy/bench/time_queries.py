"""Times the Stats API's main queries: p50 and p99 over N runs each.

    time_queries.py STATS_URL TOKEN SITE N

Prints one JSON object: {query: {"p50Ms": …, "p99Ms": …}}.
"""
import http.client
import json
import sys
import time
from urllib.parse import urlparse

url, token, site, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
target = urlparse(url)
conn = http.client.HTTPConnection(target.hostname, target.port)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
queries = {
    "30-day time series": {"metrics": ["visitors", "pageviews"], "date_range": "30d", "dimensions": ["time:day"]},
    "30-day totals": {"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": "30d"},
    "top 10 pages": {"metrics": ["visitors", "pageviews"], "date_range": "30d", "dimensions": ["event:page"],
                     "pagination": {"limit": 10}},
    "top 10 sources": {"metrics": ["visitors", "visits"], "date_range": "30d", "dimensions": ["visit:source"],
                       "pagination": {"limit": 10}},
    "top 10 countries": {"metrics": ["visitors"], "date_range": "30d", "dimensions": ["visit:country"],
                         "pagination": {"limit": 10}},
}
out = {}
for name, body in list(queries.items()) + [("current visitors", None)]:
    samples = []
    for i in range(n + 5):
        started = time.perf_counter()
        if body is None:
            conn.request("GET", f"/api/v1/stats/realtime/visitors?site_id={site}", headers=headers)
        else:
            conn.request("POST", "/api/v2/query", json.dumps(dict(body, site_id=site)), headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            sys.exit(f"{name}: HTTP {response.status} {data[:200]!r}")
        if i >= 5:  # warm-up excluded
            samples.append(elapsed)
    samples.sort()
    out[name] = {"p50Ms": round(samples[len(samples) // 2], 2), "p99Ms": round(samples[int(len(samples) * 0.99) - 1], 2)}
print(json.dumps(out))
