# Sourced by recipes: turns "--some-option value" arguments into the shell variable
# some_option=value, for variables the script has already defined (so typos fail) and, when
# the script lists them in $__option_names, only for those.
# "--config FILE" sources FILE first. Leaves the positional arguments in "$@".
# Usage (after the variables with their defaults):  . ../../steps_py/parse_options.sh

__positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options] ${usage_args:-}"
      echo "Options (current values):"
      for __v in ${__option_names:-}; do printf '  --%-22s %s\n' "${__v//_/-}" "${!__v}"; done
      exit 0 ;;
    --config)
      [ -f "${2:-}" ] || { echo "$0: config file '${2:-}' not found" >&2; exit 1; }
      . "$2"; shift 2 ;;
    --*=*)
      __name=${1%%=*}; set -- "$__name" "${1#*=}" "${@:2}" ;;
    --*)
      __name=${1#--}; __name=${__name//-/_}
      if ! declare -p "$__name" >/dev/null 2>&1 \
         || { [ -n "${__option_names:-}" ] && [[ " $(echo $__option_names) " != *" $__name "* ]]; }; then
        echo "$0: unknown option $1" >&2; exit 1
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$__name" '%s' "$2"; shift 2 ;;
    *)
      __positional+=("$1"); shift ;;
  esac
done
set -- "${__positional[@]+"${__positional[@]}"}"
unset __positional __name __v
