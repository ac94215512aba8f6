--[[
  Takes a job's coordinator lease when it is free (or Redis lost it), renews
  it when it is the caller's.

  Input:
    KEYS[1] the job's lease hash

    ARGV[1] the coordinator's id
    ARGV[2] its host
    ARGV[3] its pid
    ARGV[4] now (epoch ms)
    ARGV[5] the lease's time to live (ms)

  Output:
    1 renewed
    2 taken
    or the holder's fields: [id, host, pid, since, renewed]
]]
local id = redis.call('HGET', KEYS[1], 'id')
if id and id ~= ARGV[1] then
  return redis.call('HMGET', KEYS[1], 'id', 'host', 'pid', 'since', 'renewed')
end
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'host', ARGV[2], 'pid', ARGV[3], 'since', ARGV[4])
end
redis.call('HSET', KEYS[1], 'renewed', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if id then return 1 end
return 2
