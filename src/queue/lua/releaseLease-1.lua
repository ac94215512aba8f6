--[[
  Ends a job's coordinator lease if it is the given coordinator's.

  Input:
    KEYS[1] the job's lease hash

    ARGV[1] the coordinator's id

  Output:
    1 ended
    0 it was another's, or none
]]
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
