#compdef provision

__provision_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__provision_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __provision_complete "${completions[@]:0:-1}"
    fi
}

__provision_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_provision() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'plan:Show, without changing anything, what apply would change on each host and why.'
            'apply:Change what differs on each host, check it afterwards, and journal every step.'
            'verify:Check, without changing anything, that every host is what the inventory says; JUnit XML for CI.'
            'status:Show the last run and each host'\''s steps as the journal recorded them, without connecting.'
            'facts:Show each host'\''s OS, architecture, board, memory, cgroups, boot id and installed versions.'
            'exec:Run a command on hosts in parallel; each output line is prefixed by the host name.'
            'reset:Remove k3s from hosts: drain and delete their nodes, run the k3s uninstall script, forget their steps.'
            'kubeconfig:Print the cluster'\''s admin kubeconfig, pointed at the first server'\''s address.'
            'inventory:Work with inventory files.'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        plan|apply|verify|status|facts|exec|reset|kubeconfig|inventory|help)
            "_provision_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_provision_plan() {
    local -i ret=1
    local -ar ___output=('text' 'json')
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--output[text or json.]:output:{__provision_complete "${___output[@]}"}'
        '--detailed-exitcode[Exit 2 when changes are pending.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_apply() {
    local -i ret=1
    local -ar ___output=('text' 'json')
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--resume[Continue the last apply that failed or was interrupted; its finished steps are only re-checked.]'
        '--output[text or json.]:output:{__provision_complete "${___output[@]}"}'
        '--reboot-timeout[Seconds a rebooting host may take to come back.]:reboot-timeout:'
        '--max-unavailable[How many k3s agents may be drained for an upgrade or restarted for a config change at once.]:max-unavailable:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_verify() {
    local -i ret=1
    local -ar ___output=('text' 'json')
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--junit[Write the JUnit XML report to this file (replaced atomically); - prints it instead of the text or JSON.]:junit:'
        '--output[text or json.]:output:{__provision_complete "${___output[@]}"}'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_status() {
    local -i ret=1
    local -ar ___output=('table' 'json')
    local -ar arg_specs=(
        ':inventory:'
        '--output[table or json.]:output:{__provision_complete "${___output[@]}"}'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_facts() {
    local -i ret=1
    local -ar ___output=('table' 'json')
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--output[table or json.]:output:{__provision_complete "${___output[@]}"}'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_exec() {
    local -i ret=1
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--sudo[Run as root (through sudo for non-root logins).]'
        '--timeout[Give up on a host'\''s command after this many seconds.]:timeout:'
        '*:command:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_reset() {
    local -i ret=1
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--yes[Do not ask for confirmation (needed when stdin is not a terminal).]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_kubeconfig() {
    local -i ret=1
    local -ar arg_specs=(
        ':inventory:'
        '--parallel[How many hosts to work on at once.]:parallel:'
        '(--verbose -v)'{--verbose,-v}'[Log connections and remote commands to stderr (secrets redacted).]'
        '*--host[Only this host (repeatable). Default\: every host.]:host:'
        '--output[Write it to this file (mode 0600, replaced atomically) instead of printing it.]:output:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_inventory() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'check:Check an inventory and print every problem as file:line:column: message.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        check)
            "_provision_inventory_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_provision_inventory_check() {
    local -i ret=1
    local -ar arg_specs=(
        ':file:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_provision_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _provision ]]; then
    _provision "${@}"
else
    compdef _provision provision
fi
