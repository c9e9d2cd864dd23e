# Makes a C header holding a Lua source file as a byte array:
# cmake -DSOURCE=socket.lua -DOUTPUT=socket_lua.h -DNAME=socket_lua -P embed.cmake
file(READ ${SOURCE} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
  "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT} "/* Generated from ${SOURCE} by embed.cmake. */\n"
  "static const char ${NAME}[] = {\n${bytes}\n};\n")
