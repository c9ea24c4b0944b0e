"""Pre-fills the aggregate queue with hydrated batches of one large site, as hydration
would send them: EVENTS events over the last DAYS days (ending today, UTC), in time
order, PER_BATCH (default 50) per batch.

    fill_aggregate.py REDIS_PORT SITE EVENTS DAYS [PER_BATCH]

About 15,000 visitors a day (a new visitor hash each day), 1 to 12 interactions per
visit, 2,000 pages (a long tail past the breakdown limit), 40 sources, 90 countries,
a few UTM campaigns, three custom events with a `plan` property. Prints the event count.
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

import redis

port, site, total, days = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(11)
r = redis.Redis(port=port)
q = "{aggregate}"
per_batch = int(sys.argv[5]) if len(sys.argv) > 5 else 50
pages = [f"/p/{i}" for i in range(2000)]
page_weights = [1.0 / (rank ** 1.05) for rank in range(1, len(pages) + 1)]
sources = [None] * 20 + ["Google", "Bing", "DuckDuckGo", "Twitter", "Facebook", "Hacker News", "Reddit"] + \
          [f"blog{i}.example" for i in range(33)]
countries = [f"C{i:02d}" for i in range(90)]
country_weights = [1.0 / (rank ** 1.3) for rank in range(1, 91)]
browsers = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera", "Chrome Mobile", "Mobile Safari"]
oses = ["Windows", "Mac OS X", "iOS", "Android", "Linux"]
devices = ["desktop", "mobile", "tablet"]
today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
start = today - timedelta(days=days - 1)
per_day = total // days

pipe = r.pipeline(transaction=False)
batches = 0
event_id = 1
count = 0
for d in range(days):
    # One day at a time, in time order, so memory holds a day and batches follow the clock.
    day = start + timedelta(days=d)
    events = []
    visitor = 0
    while len(events) < per_day:
        visitor += 1
        hash_ = f"{d:03d}{visitor:013x}"
        visit_start = day + timedelta(seconds=random.randint(0, 86_399))
        base = {"country": random.choices(countries, country_weights)[0], "browser": random.choice(browsers),
                "os": random.choice(oses), "device": random.choice(devices), "isBot": False}
        source = random.choice(sources)
        utm = random.choice([None] * 8 + ["newsletter", "spring-sale"])
        t = visit_start
        for i in range(min(random.randint(1, 12), per_day - len(events))):
            enrichment = dict(base, path=random.choices(pages, page_weights)[0])
            if source:
                enrichment["referrerSource"] = source
            if utm:
                enrichment["utmSource"], enrichment["utmMedium"], enrichment["utmCampaign"] = utm, "email", utm
            stamp = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            e = {"eventId": event_id, "messageId": f"m{event_id}", "visitorHash": hash_, "enrichment": enrichment,
                 "timestamp": stamp, "receivedAt": stamp}
            if random.random() < 0.75:
                e["type"] = "page"
            else:
                e["type"], e["name"] = "track", random.choice(["Signed Up", "Added to Cart", "Clicked"])
                e["properties"] = {"plan": random.choice(["free", "pro", "team"])}
            events.append(e)
            event_id += 1
            t += timedelta(seconds=random.randint(5, 600))
    events.sort(key=lambda e: e["timestamp"])
    for i in range(0, len(events), per_batch):
        batches += 1
        message = {"version": 1, "batchId": batches, "siteId": site, "events": events[i:i + per_batch]}
        pipe.lpush(f"{q}:site:{site}", json.dumps(message, separators=(",", ":")))
        if batches % 500 == 0:
            pipe.execute()
    count += len(events)
pipe.sadd(f"{q}:sites", str(site))
pipe.execute()
if r.lpos(f"{q}:ring", str(site)) is None:
    r.lpush(f"{q}:ring", str(site))
r.incrby(f"{q}:depth", batches)
print(count, batches)
