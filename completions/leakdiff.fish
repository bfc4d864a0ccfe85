# fish completion for leakdiff. Option lists mirror the argp tables in cli/;
# tests/e2e/test_completions.py fails when they drift apart.

set -l commands record diff show
complete -c leakdiff -f
complete -c leakdiff -n "not __fish_seen_subcommand_from $commands" -a record -d 'Run a command with the agent and store its heap snapshots'
complete -c leakdiff -n "not __fish_seen_subcommand_from $commands" -a diff -d 'Report growth between snapshots'
complete -c leakdiff -n "not __fish_seen_subcommand_from $commands" -a show -d 'Summarise one snapshot'
complete -c leakdiff -n "not __fish_seen_subcommand_from $commands" -s V -l version -d 'Print the version'
complete -c leakdiff -l help -d 'Give the help list'
complete -c leakdiff -l usage -d 'Give a short usage message'

# record
complete -c leakdiff -n "__fish_seen_subcommand_from record" -s o -l output -r -F -d 'File for the at-exit snapshot'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l runtime -x -a 'auto python native' -d 'Runtime of the command'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l sample -x -d 'Sample one allocation per BYTES'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l tracemalloc -d 'Python: record allocations with tracemalloc'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l native -d 'Python: also track the malloc family, under the Python lines'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l depth -x -d 'Frames per allocation traceback'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l every -x -d 'Also take a snapshot every DURATION'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l signal -x -a 'USR1 USR2' -d 'Signal that asks for a snapshot'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l peak -d 'Also keep a snapshot of the heap at its peak'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l pid -x -a '(__fish_complete_pids)' -d 'Attach to a running process'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -l duration -x -d 'With --pid: detach after DURATION'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -s q -l quiet -d 'Do not name each snapshot written'
complete -c leakdiff -n "__fish_seen_subcommand_from record" -a '(__fish_complete_subcommand --fcs-skip=2)'

# diff and show
for cmd in diff show
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -s n -l top -x -d 'Rows per table, 0 for all'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -l min-bytes -x -d 'Leave out rows whose byte change is under SIZE'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -s b -l by -x -a 'type site all' -d 'Tables to show'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -s v -l verbose -d 'Show whole tracebacks'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -l color -x -a 'auto always never' -d 'Colour the text report'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -l type-sites -x -d 'Allocation sites listed under each type'
    complete -c leakdiff -n "__fish_seen_subcommand_from $cmd" -k -a '(__fish_complete_suffix .snap)'
end
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -s f -l format -x -a 'text json markdown html' -d 'Output format'
complete -c leakdiff -n "__fish_seen_subcommand_from show" -s f -l format -x -a 'text json html' -d 'Output format'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l depth -x -d 'Compare tracebacks on their innermost N frames'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l match -x -a 'graded exact function' -d 'How sites are matched across versions'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l strip-prefix -x -a '(__fish_complete_directories)' -d 'Remove PATH from the front of file names'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l suppress -r -F -d 'Leave out growth matching patterns in FILE'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l max-total-growth -x -d 'Fail when the total grows by more'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l max-site-growth -x -d 'Fail when a site grows by more'
complete -c leakdiff -n "__fish_seen_subcommand_from diff" -l max-type-growth -x -d 'Fail when a type gains more objects'
