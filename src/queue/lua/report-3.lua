--[[
  Appends a store's result to its job's results stream, fenced: only while
  the reporting worker still holds the store's BullMQ lock (its token is the
  fence) and only if the result is past what the store already reported. One
  script, so no other worker can take the store between the check and the
  append.

  Input:
    KEYS[1] the store's BullMQ lock (`<queue.toKey(bull job id)>:lock`)
    KEYS[2] the job's results stream
    KEYS[3] the job's progress hash (store index -> images reported)

    ARGV[1] the reporting worker's lock token
    ARGV[2] the store's index
    ARGV[3] the first position this result covers
    ARGV[4] the position after it (the store's new progress)
    ARGV[5] the result's idempotency key
    ARGV[6] the stream entry (JSON)

  Output:
     1 appended
     0 a duplicate, the store was called off, or its job is over (the
       coordinator creates the stream before it hands anything out and
       deletes it at the end)
    -1 the lock is not this worker's any more
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local reported = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if tonumber(ARGV[3]) < reported then return 0 end
redis.call('XADD', KEYS[2], '*', 'k', ARGV[5], 'e', ARGV[6])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
