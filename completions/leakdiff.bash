# bash completion for leakdiff                                 -*- shell-script -*-
# Option lists mirror the argp tables in cli/; tests/e2e/test_completions.py
# fails when they drift apart.

_leakdiff_snaps()
{
	COMPREPLY+=($(compgen -f -X '!*.snap' -- "$1") $(compgen -d -- "$1"))
}

_leakdiff()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -s || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local commands="record diff show"
	local report="--format --top --min-bytes --by --verbose --color --type-sites --help --usage"
	local cmd="" i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		record | diff | show) cmd=${words[i]}; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$commands --help --usage --version" -- "$cur"))
		return
	fi

	# record: after the command name everything belongs to the program (a
	# word that is the value of an option before it is no command name)
	if [[ $cmd == record ]]; then
		for ((i = i + 1; i < cword; i++)); do
			if [[ ${words[i]} == -- || ${words[i]} != -* && ${words[i-1]} != @(-o|--output|--runtime|--depth|--every|--signal|--sample|--pid|--duration) ]]; then
				COMPREPLY=($(compgen -c -- "$cur") $(compgen -f -- "$cur"))
				return
			fi
		done
	fi

	case $prev in
	--format | -f)
		if [[ $cmd == diff ]]; then
			COMPREPLY=($(compgen -W "text json markdown html" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "text json html" -- "$cur"))
		fi
		return ;;
	--by | -b) COMPREPLY=($(compgen -W "type site all" -- "$cur")); return ;;
	--color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
	--match) COMPREPLY=($(compgen -W "graded exact function" -- "$cur")); return ;;
	--runtime) COMPREPLY=($(compgen -W "auto python native" -- "$cur")); return ;;
	--signal) COMPREPLY=($(compgen -W "USR1 USR2" -- "$cur")); return ;;
	--output | -o | --suppress) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--strip-prefix) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--pid) COMPREPLY=($(compgen -W "$(command ls /proc 2>/dev/null | grep -E '^[0-9]+$')" -- "$cur")); return ;;
	--top | -n | --min-bytes | --type-sites | --depth | --every | --duration | --sample | --max-total-growth | \
	--max-site-growth | --max-type-growth) return ;;
	esac

	if [[ $cur == -* ]]; then
		case $cmd in
		record) COMPREPLY=($(compgen -W "--output --runtime --depth --every --signal --peak --sample --tracemalloc --native --pid --duration --quiet --help --usage" -- "$cur")) ;;
		diff) COMPREPLY=($(compgen -W "$report --depth --match --strip-prefix --suppress --max-total-growth --max-site-growth --max-type-growth" -- "$cur")) ;;
		show) COMPREPLY=($(compgen -W "$report" -- "$cur")) ;;
		esac
		[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		return
	fi
	case $cmd in
	diff | show) _leakdiff_snaps "$cur" ;;
	record) COMPREPLY=($(compgen -c -- "$cur")) ;;
	esac
}
complete -F _leakdiff leakdiff
