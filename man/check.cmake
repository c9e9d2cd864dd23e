# Every manual page lints clean (warnings and worse; the STYLE level
# only notes that the other pages are not installed yet) and renders.
foreach(page ${PAGES})
  execute_process(COMMAND ${MANDOC} -Tlint -W warning ${page}
    OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT out STREQUAL "")
    message(SEND_ERROR "mandoc -Tlint ${page}: ${rc}\n${out}")
  endif()
  execute_process(COMMAND ${MAN} -l ${page}
    OUTPUT_VARIABLE text ERROR_VARIABLE err RESULT_VARIABLE rc)
  string(REGEX MATCH "\nNAME\n" named "${text}")
  if(NOT rc EQUAL 0 OR named STREQUAL "")
    message(SEND_ERROR "man -l ${page}: ${rc}\n${err}")
  endif()
endforeach()
