"""Pre-fills the hydrate queue with realistic raw batches, as the collector would.

    fill_hydrate.py REDIS_PORT BATCHES EVENTS_PER_BATCH

Many sites with a Zipf-like size distribution, a few hundred distinct user agents,
page views with real-looking URLs, referrers and UTM tags, custom events, identifies,
some duplicates and some invalid events. Batches arrive 100 ms apart, ending now; each
event happened in the ten seconds before its batch was sent, to the millisecond (as SDKs
stamp them), so a user's identifies carry distinct times.
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

import redis

port, batches, per_batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
browsers = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{m}.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS {i}_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{i}.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android {a}; Pixel {p}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{f}.0) Gecko/20100101 Firefox/{f}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (iPad; CPU OS {i}_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{i}.0 Mobile/15E148 Safari/604.1",
]
agents = sorted({random.choice(browsers).format(v=random.randint(90, 131), m=random.randint(13, 18), i=random.randint(12, 18),
                                                a=random.randint(9, 15), p=random.randint(3, 9), f=random.randint(100, 133))
                 for _ in range(2000)})[:300]
referrers = ["https://www.google.com/", "https://www.bing.com/", "https://t.co/x", "https://news.ycombinator.com/",
             "https://www.reddit.com/r/swift/", "https://duckduckgo.com/", "", "", "https://blog.example.org/post/1"]
sites = list(range(1, 201))
weights = [1.0 / (rank ** 1.1) for rank in range(1, len(sites) + 1)]
r = redis.Redis(port=port)
start = datetime.now(timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


pipe = r.pipeline(transaction=False)
batch_id = 1
for b in range(batches):
    site = random.choices(sites, weights)[0]
    agent = random.choice(agents)
    received = start - timedelta(milliseconds=(batches - b) * 100)
    now = iso(received)
    ip = f"{random.randint(1, 223)}.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    events = []
    for i in range(per_batch):
        roll = random.random()
        mid = f"b{b}-e{i}" if random.random() > 0.02 else f"b{max(0, b - 1)}-e{i}"
        happened = received - timedelta(milliseconds=random.randint(0, 10_000))
        base = {"messageId": mid, "anonymousId": f"anon-{random.randint(1, 5000)}", "timestamp": iso(happened),
                "context": {"userAgent": agent, "page": {
                    "url": f"https://site{site}.example/p/{random.randint(1, 300)}?utm_source=newsletter&utm_medium=email"
                           if random.random() < 0.2 else f"https://site{site}.example/p/{random.randint(1, 300)}",
                    "referrer": random.choice(referrers)}}}
        if roll < 0.6:
            events.append({"type": "page", "name": "Product", **base})
        elif roll < 0.9:
            events.append({"type": "track", "event": random.choice(["Added to Cart", "Signed Up", "Clicked"]),
                           "properties": {"price": random.randint(1, 200), "sku": f"sku-{random.randint(1, 999)}"}, **base})
        elif roll < 0.98:
            events.append({"type": "identify", "userId": f"user-{random.randint(1, 2000)}",
                           "traits": {"plan": random.choice(["free", "pro"])}, **base})
        else:
            events.append({"type": "track", **base})  # invalid: no event name
    payload = json.dumps({"batch": events, "sentAt": now}, separators=(",", ":"))
    message = {"version": 1, "batchId": batch_id, "siteId": site, "receivedAt": now, "clientIp": ip,
               "userAgent": agent, "eventCount": len(events), "payload": payload}
    batch_id += 1
    s = str(site)
    pipe.lpush("{hydrate}:site:" + s, json.dumps(message, separators=(",", ":")))
    pipe.sadd("{hydrate}:sites", s)
    if b % 200 == 199:
        pipe.execute()
pipe.execute()
for s in r.smembers("{hydrate}:sites"):
    if r.lpos("{hydrate}:ring", s) is None:
        r.lpush("{hydrate}:ring", s)
r.set("{hydrate}:depth", batches)
print(batches * per_batch)
