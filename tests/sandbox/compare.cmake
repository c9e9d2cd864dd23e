# Compares the broker's printed filter with the golden copy, so that any
# change to the allowed calls shows up in review.  To accept a change:
#   tcpbroker --print-filter --policy tests/sandbox/X.conf > tests/sandbox/broker-X.pfc
# (broker-logs.pfc: with --log and --decision-log after the policy;
# broker-busy-poll.pfc: with --busy-poll 200 after it;
# broker-run.pfc: the broker of `tcpbroker run`, printed by
#   tcpbroker run --print-filter --policy tests/sandbox/listen.conf).
separate_arguments(ARGS)
execute_process(COMMAND ${BROKER} ${COMMAND} --print-filter --policy ${POLICY}
    ${ARGS}
  OUTPUT_VARIABLE got RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "tcpbroker --print-filter failed: ${rc}")
endif()
file(READ ${GOLDEN} want)
if(NOT got STREQUAL want)
  file(WRITE ${OUT} "${got}")
  message(FATAL_ERROR "the filter differs from ${GOLDEN}; see ${OUT}\n"
    "If the change is intended, copy it over the golden file.")
endif()
