/// The Lua scripts behind ``ReliableQueue``. Each changes several keys of one queue
/// atomically; all keys share the queue's hash tag.
enum QueueScripts {
    /// KEYS: ring, sites, wake, depth. ARGV: site prefix, wake limit, then site/item pairs.
    /// Appends each item to its site's list and puts the site in the ring if absent.
    static let push = RedisScript("""
        local n = 0
        for i = 3, #ARGV, 2 do
          local site = ARGV[i]
          redis.call('LPUSH', ARGV[1] .. site, ARGV[i + 1])
          if redis.call('SADD', KEYS[2], site) == 1 then
            redis.call('LPUSH', KEYS[1], site)
          end
          n = n + 1
        end
        redis.call('LPUSH', KEYS[3], '1')
        redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[2]) - 1)
        redis.call('INCRBY', KEYS[4], n)
        return n
        """)

    /// KEYS: ring, sites, inflight list, depth, last take. ARGV: site prefix, max items per
    /// site, max sites, take token, token lifetime in ms.
    /// Takes the next site of the ring, moves up to max of its items (oldest first) into
    /// the consumer's in-flight list as `<site>\\n<item>`, and puts the site back at the
    /// end of the ring if it still has items; then the next site, until max sites gave
    /// items or every site of the ring was visited once. If it moved any, records the
    /// take's token as the consumer's last take (for ``ackAll``). Returns
    /// `{site, n, item × n, …}` (a group per site) or `{}`.
    static let pop = RedisScript("""
        local turns = redis.call('LLEN', KEYS[1])
        local out = {}
        local taken = 0
        local sites = 0
        for t = 1, turns do
          local site = redis.call('RPOP', KEYS[1])
          if not site then break end
          local key = ARGV[1] .. site
          local items = {}
          for i = 1, tonumber(ARGV[2]) do
            local item = redis.call('RPOP', key)
            if not item then break end
            redis.call('LPUSH', KEYS[3], site .. '\\n' .. item)
            items[#items + 1] = item
          end
          if redis.call('LLEN', key) > 0 then
            redis.call('LPUSH', KEYS[1], site)
          else
            redis.call('SREM', KEYS[2], site)
          end
          if #items > 0 then
            out[#out + 1] = site
            out[#out + 1] = #items
            for _, item in ipairs(items) do out[#out + 1] = item end
            taken = taken + #items
            sites = sites + 1
            if sites >= tonumber(ARGV[3]) then break end
          end
        end
        if taken > 0 then
          redis.call('DECRBY', KEYS[4], taken)
          redis.call('SET', KEYS[5], ARGV[4], 'PX', tonumber(ARGV[5]))
        end
        return out
        """)

    /// KEYS: inflight list, last take. ARGV: the number of entries the consumer holds, the
    /// token of its latest take. Deletes the in-flight list if the consumer's last take is
    /// still that one and the list holds exactly that many entries; returns 1 if it did, 0
    /// if not (the caller then removes its entries one by one with `LREM`).
    ///
    /// Why that is exact: a consumer's takes never overlap, so with no take since the one
    /// it knows as its latest, every entry in its list came from a take whose reply it has
    /// read; each such entry is held or was removed. The list is then part of what it
    /// holds, and of the same length only if it is all of it. (A length alone was not
    /// enough: after a recovery emptied the list of a live consumer, a take landing just
    /// before the delete could hold as many entries as were being acknowledged.)
    static let ackAll = RedisScript("""
        if redis.call('GET', KEYS[2]) == ARGV[2] and redis.call('LLEN', KEYS[1]) == tonumber(ARGV[1]) then
          redis.call('DEL', KEYS[1])
          return 1
        end
        return 0
        """)

    /// KEYS: consumers. ARGV: consumer id, lease in ms. Renews the consumer's lease,
    /// measured on the server's clock so consumers' clocks need not agree.
    static let renew = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        return now
        """)

    /// KEYS: consumers, ring, sites, wake, depth. ARGV: inflight prefix, site prefix, max consumers,
    /// last-take prefix.
    /// For each consumer whose lease expired, moves its in-flight entries back to the
    /// front (pop end) of their sites' lists, oldest ending up first, and forgets it.
    /// Returns the number of items recovered.
    static let recover = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
        local moved = 0
        for _, consumer in ipairs(dead) do
          local inflight = ARGV[1] .. consumer
          local entries = redis.call('LRANGE', inflight, 0, -1)
          for _, entry in ipairs(entries) do
            local nl = string.find(entry, '\\n', 1, true)
            if nl then
              local site = string.sub(entry, 1, nl - 1)
              redis.call('RPUSH', ARGV[2] .. site, string.sub(entry, nl + 1))
              if redis.call('SADD', KEYS[3], site) == 1 then
                redis.call('LPUSH', KEYS[2], site)
              end
              moved = moved + 1
            end
          end
          redis.call('DEL', inflight, ARGV[4] .. consumer)
          redis.call('ZREM', KEYS[1], consumer)
        end
        if moved > 0 then
          redis.call('LPUSH', KEYS[4], '1')
          redis.call('INCRBY', KEYS[5], moved)
        end
        return moved
        """)

    /// KEYS: inflight, ring, sites, wake, depth. ARGV: site prefix, then `<site>\\n<item>` entries.
    /// Gives items back unprocessed (graceful shutdown): each goes back to the front of
    /// its site's list and leaves the in-flight list.
    static let release = RedisScript("""
        local moved = 0
        for i = 2, #ARGV do
          local entry = ARGV[i]
          if redis.call('LREM', KEYS[1], 1, entry) == 1 then
            local nl = string.find(entry, '\\n', 1, true)
            if nl then
              local site = string.sub(entry, 1, nl - 1)
              redis.call('RPUSH', ARGV[1] .. site, string.sub(entry, nl + 1))
              if redis.call('SADD', KEYS[3], site) == 1 then
                redis.call('LPUSH', KEYS[2], site)
              end
              moved = moved + 1
            end
          end
        end
        if moved > 0 then
          redis.call('LPUSH', KEYS[4], '1')
          redis.call('INCRBY', KEYS[5], moved)
        end
        return moved
        """)
}
