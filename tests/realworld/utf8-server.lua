-- The victim of tests/realworld/lua-utf8.sh: a server that counts the
-- code points of UTF-8 strings with utf8.codes, the function of Lua bug
-- "utf8.codes does not raise an error on spurious continuation bytes"
-- (5.4.4; fixed in 5.4.6, see lua-utf8codes.diff).
--
-- One request per line on stdin: TAG HEX, where TAG is a word without
-- blanks and HEX the string's bytes in hex (two digits each). One answer
-- per line on stdout, in order, flushed at once:
--   TAG OK <number of code points>
--   TAG ERR <Lua's error message, without a "file:line: " prefix>
-- "ready" is printed first; the server ends at the end of its input.
io.stdout:setvbuf("line")

local function count(s)
  local n = 0
  for _ in utf8.codes(s) do n = n + 1 end
  return n
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

print("ready")
for line in io.lines() do
  local tag, hex = line:match("^(%S+) (%x*)$")
  if not tag then
    io.write("? ERR bad request\n")
  else
    local ok, r = pcall(count, unhex(hex))
    if ok then
      io.write(tag, " OK ", r, "\n")
    else
      io.write(tag, " ERR ", (tostring(r):gsub("^[^:]*:%d+: ", "")), "\n")
    end
  end
end
