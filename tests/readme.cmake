# The README's C snippet is examples/readme.c's, between its markers:
# cmake -DREADME=README.md -DSOURCE=examples/readme.c -P readme.cmake
file(READ ${README} readme)
file(READ ${SOURCE} source)
string(REGEX MATCH "```c\n([^`]*)```" block "${readme}")
set(block "${CMAKE_MATCH_1}")
string(REGEX MATCH "/\\* README begin \\*/\n(.*)\t/\\* README end \\*/" region
  "${source}")
set(region "${CMAKE_MATCH_1}")
# The program's lines are indented one tab more.
string(REPLACE "\n\t" "\n" region "\n${region}")
string(SUBSTRING "${region}" 1 -1 region)
if(block STREQUAL "" OR NOT block STREQUAL region)
  message(FATAL_ERROR "README.md's C snippet differs from ${SOURCE}:\n"
    "--- README\n${block}--- ${SOURCE}\n${region}")
endif()
