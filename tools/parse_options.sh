#!/usr/bin/env bash
# Option parsing for recipe scripts: "--name value" sets the shell variable "name" when the
# script has defined it (dashes in names read as underscores). "--help" prints $help_message.
#
# Usage (in a script, after defining defaults and help_message):
#   . "${MAIN_ROOT}/tools/parse_options.sh"
#   # the remaining positional arguments are left in "$@"

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            echo "${help_message:-No help available.}"
            exit 0 ;;
        --*=*)
            _name=${1%%=*}; _value=${1#*=}; shift ;;
        --*)
            if [ $# -lt 2 ]; then
                echo "$0: option $1 needs a value" >&2
                exit 2
            fi
            _name=$1; _value=$2; shift 2 ;;
        *)
            break ;;
    esac
    _name=${_name#--}
    _name=${_name//-/_}
    if ! declare -p "${_name}" >/dev/null 2>&1; then
        echo "$0: unknown option --${_name} (see --help)" >&2
        exit 2
    fi
    printf -v "${_name}" '%s' "${_value}"
done
unset _name _value
