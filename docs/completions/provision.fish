function __provision_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __provision_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __provision_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __provision_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __provision_parse_tokens -S
    set -l unparsed_tokens (__provision_tokens -pc)
    switch $unparsed_tokens[1]
    case 'provision'
        __provision_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'plan'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'output=' 'detailed-exitcode' 'version' 'h/help'
        case 'apply'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'resume' 'output=' 'reboot-timeout=' 'max-unavailable=' 'version' 'h/help'
        case 'verify'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'junit=' 'output=' 'version' 'h/help'
        case 'status'
            __provision_parse_subcommand 1 'output=' 'version' 'h/help'
        case 'facts'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'output=' 'version' 'h/help'
        case 'exec'
            __provision_parse_subcommand -r 2 'parallel=' 'v/verbose' 'host=+' 'sudo' 'timeout=' 'version' 'h/help'
        case 'reset'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'yes' 'version' 'h/help'
        case 'kubeconfig'
            __provision_parse_subcommand 1 'parallel=' 'v/verbose' 'host=+' 'output=' 'version' 'h/help'
        case 'inventory'
            __provision_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'check'
                __provision_parse_subcommand 1 'version' 'h/help'
            end
        case 'help'
            __provision_parse_subcommand -r 1 'version'
        end
    end
end

function __provision_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __provision_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __provision_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __provision_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__provision_tokens -p)
    if test -z "$(__provision_tokens -t)"
        set -l index (count (__provision_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'provision' -f
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'plan' -d 'Show, without changing anything, what apply would change on each host and why.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'apply' -d 'Change what differs on each host, check it afterwards, and journal every step.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'verify' -d 'Check, without changing anything, that every host is what the inventory says; JUnit XML for CI.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'status' -d 'Show the last run and each host\'s steps as the journal recorded them, without connecting.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'facts' -d 'Show each host\'s OS, architecture, board, memory, cgroups, boot id and installed versions.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'exec' -d 'Run a command on hosts in parallel; each output line is prefixed by the host name.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'reset' -d 'Remove k3s from hosts: drain and delete their nodes, run the k3s uninstall script, forget their steps.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'kubeconfig' -d 'Print the cluster\'s admin kubeconfig, pointed at the first server\'s address.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'inventory' -d 'Work with inventory files.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" output' -l 'output' -d 'text or json.' -rfka 'text json'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" detailed-exitcode' -l 'detailed-exitcode' -d 'Exit 2 when changes are pending.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision plan" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" resume' -l 'resume' -d 'Continue the last apply that failed or was interrupted; its finished steps are only re-checked.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" output' -l 'output' -d 'text or json.' -rfka 'text json'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" reboot-timeout' -l 'reboot-timeout' -d 'Seconds a rebooting host may take to come back.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" max-unavailable' -l 'max-unavailable' -d 'How many k3s agents may be drained for an upgrade or restarted for a config change at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision apply" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" junit' -l 'junit' -d 'Write the JUnit XML report to this file (replaced atomically); - prints it instead of the text or JSON.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" output' -l 'output' -d 'text or json.' -rfka 'text json'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision status" output' -l 'output' -d 'table or json.' -rfka 'table json'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision status" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts" output' -l 'output' -d 'table or json.' -rfka 'table json'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision facts" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" sudo' -l 'sudo' -d 'Run as root (through sudo for non-root logins).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" timeout' -l 'timeout' -d 'Give up on a host\'s command after this many seconds.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision exec" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset" yes' -l 'yes' -d 'Do not ask for confirmation (needed when stdin is not a terminal).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision reset" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig" parallel' -l 'parallel' -d 'How many hosts to work on at once.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig" v verbose' -l 'verbose' -s 'v' -d 'Log connections and remote commands to stderr (secrets redacted).'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig"' -l 'host' -d 'Only this host (repeatable). Default: every host.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig" output' -l 'output' -d 'Write it to this file (mode 0600, replaced atomically) instead of printing it.' -rfka ''
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision kubeconfig" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision inventory" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision inventory" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_positional "provision inventory" -eq 1' -fa 'check' -d 'Check an inventory and print every problem as file:line:column: message.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision inventory check" version' -l 'version' -d 'Show the version.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision inventory check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'provision' -n '__provision_should_offer_completions_for_flags_or_options "provision help" version' -l 'version' -d 'Show the version.'
