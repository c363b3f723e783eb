/**
 * `jobctl completion bash|zsh`: prints a completion script. Job ids are
 * completed from `jobctl list -q`, so they follow the same JOBCTL_*
 * environment as the command being completed.
 */
import { helpOption, parseFlags } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { UsageError } from './failures.js';

/** A parsed `completion`. */
export type CompletionCommand =
  { readonly kind: 'help' } | { readonly kind: 'completion'; readonly shell: 'bash' | 'zsh' };

/** Parses `completion` arguments. */
export function parseCompletion(args: readonly string[]): CompletionCommand {
  const { values, positionals } = parseFlags('completion', args, helpOption, true);
  if (values.help === true) return { kind: 'help' };
  const [shell, ...extra] = positionals;
  if ((shell !== 'bash' && shell !== 'zsh') || extra.length > 0) {
    throw new UsageError(
      `completion: ${shell === undefined ? 'missing the shell' : `unsupported shell ${JSON.stringify(positionals.join(' '))}`}; use bash or zsh`,
    );
  }
  return { kind: 'completion', shell };
}

const connectionFlags =
  '--context --context-selector --config --server --tls-server-name --certs --user --cert --key --ca';
const jobFlags =
  '--cpu --memory --io-read --io-write --pids --env -e --cwd --network --timeout --name -l --label -i --interactive -t --tty';

/** The bash script: `source <(jobctl completion bash)`. */
export const bashScript = `# bash completion for jobctl. Load it with: source <(jobctl completion bash)
_jobctl_ids() {
  COMPREPLY=($(compgen -W "$(jobctl list -q "$@" 2>/dev/null)" -- "$cur"))
}
_jobctl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      --context|--context-selector|--config|--server|--tls-server-name|--certs|--user|--cert|--key|--ca) ((i++)) ;;
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  case "$prev" in
    --certs|--cwd) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --cert|--key|--ca|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --context) COMPREPLY=($(compgen -W "$(jobctl config get-contexts -o name 2>/dev/null)" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "running stopping finished" -- "$cur")); return ;;
    --network) COMPREPLY=($(compgen -W "host loopback" -- "$cur")); return ;;
    --context-selector|--server|--tls-server-name|--user|--cpu|--memory|--io-read|--io-write|--pids|--env|-e|--grace|--timeout|--signal|-s) return ;;
  esac
  local global="${connectionFlags} --help"
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "start run stop status list logs attach events kill wait rm config completion --version $global" -- "$cur")) ;;
    start|run)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "${jobFlags} $global" -- "$cur"))
      else COMPREPLY=($(compgen -c -- "$cur")); fi ;;
    stop)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--grace $global" -- "$cur"))
      else _jobctl_ids --state running; fi ;;
    status)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--json $global" -- "$cur")); else _jobctl_ids; fi ;;
    logs)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "-f --follow -n --tail --since -t --timestamps --stdout --stderr $global" -- "$cur"))
      else _jobctl_ids; fi ;;
    list) COMPREPLY=($(compgen -W "--state -l --selector --name --owner --limit -o --output --json -q --quiet -w --watch $global" -- "$cur")) ;;
    events) COMPREPLY=($(compgen -W "--state -l --selector --name --owner --json $global" -- "$cur")) ;;
    attach)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--no-stdin -n --tail $global" -- "$cur"))
      else _jobctl_ids --state running; fi ;;
    kill)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "-s --signal --all $global" -- "$cur"))
      else _jobctl_ids --state running; fi ;;
    wait)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--timeout $global" -- "$cur")); else _jobctl_ids; fi ;;
    rm)
      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "-f --force --all-finished $global" -- "$cur"))
      else _jobctl_ids; fi ;;
    config)
      if [[ $prev == config ]]; then COMPREPLY=($(compgen -W "get-contexts current-context use-context set-context delete-context" -- "$cur"))
      elif [[ $prev == *-context && $prev != current-context ]]; then COMPREPLY=($(compgen -W "$(jobctl config get-contexts -o name 2>/dev/null)" -- "$cur")); fi ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
  esac
}
complete -F _jobctl jobctl`;

/** The zsh script: `source <(jobctl completion zsh)`, or save it as _jobctl on $fpath. */
export const zshScript = `#compdef jobctl
# zsh completion for jobctl. Load it with: source <(jobctl completion zsh)
_jobctl_ids() {
  local -a ids
  ids=(\${(f)"$(jobctl list -q "$@" 2>/dev/null)"})
  _describe 'job id' ids
}
_jobctl_contexts() {
  local -a contexts
  contexts=(\${(f)"$(jobctl config get-contexts -o name 2>/dev/null)"})
  _describe 'context' contexts
}
_jobctl() {
  local state
  local -a global commands job filter
  global=(
    '--context[contexts of the contexts file]:context:_jobctl_contexts'
    '--context-selector[run: contexts whose labels match]:selector:'
    '--config[contexts file]:file:_files'
    '--server[server address]:host\\:port:'
    '--tls-server-name[name to verify the server certificate against]:name:'
    '--certs[certificates directory]:directory:_files -/'
    '--user[user whose certificate to use]:user:'
    '--cert[client certificate file]:file:_files'
    '--key[client private key file]:file:_files'
    '--ca[CA certificate file]:file:_files'
    '(-h --help)'{-h,--help}'[show help]'
  )
  commands=(
    'start:start a job and print its id'
    'run:run a job, stream its output, exit with its status'
    'stop:stop a job'
    'status:show the exit report of a job'
    'list:list jobs'
    'logs:print the output of a job'
    'attach:attach to a job (its output, and stdin when started with -i)'
    'kill:send a signal to a job'
    'wait:wait until jobs end'
    'rm:remove jobs and their output'
    'events:print job state changes as they happen'
    'config:named contexts: servers and certificates'
    'completion:print a shell completion script'
  )
  job=(
    '--cpu[CPU in cores]:cores:'
    '--memory[memory limit]:size:'
    '--io-read[read bandwidth]:bytes per second:'
    '--io-write[write bandwidth]:bytes per second:'
    '--pids[most processes]:count:'
    '*'{-e,--env}'[environment variable]:NAME=VALUE:'
    '--cwd[working directory]:directory:'
    '--network[network mode]:mode:(host loopback)'
    '--timeout[stop the job after this long]:duration:'
    '--name[job name]:name:'
    '*'{-l,--label}'[label]:KEY=VALUE:'
    '(-i --interactive)'{-i,--interactive}'[keep stdin open; run copies its stdin]'
    '(-t --tty)'{-t,--tty}'[run the job on a terminal]'
  )
  filter=(
    '--state[only jobs in this state]:state:(running stopping finished)'
    '(-l --selector)'{-l,--selector}'[label selector]:selector:'
    '--name[only jobs with this name]:name:'
    '--owner[only this user'"'"'s jobs]:user:'
  )
  _arguments -C $global '--version[print the version]' '1:command:->command' '*::argument:->argument'
  case $state in
    command) _describe 'command' commands ;;
    argument)
      case $words[1] in
        start|run) _arguments $global $job '*::command:_normal' ;;
        stop) _arguments $global '--grace[grace period]:duration:' '1:job id:{_jobctl_ids --state running}' ;;
        status) _arguments $global '--json[print protobuf JSON]' '1:job id:_jobctl_ids' ;;
        logs) _arguments $global '(-f --follow)'{-f,--follow}'[follow until the job ends]' \\
          '(-n --tail)'{-n,--tail}'[only the last N lines]:lines:' '--since[only output since]:duration or time:' \\
          '(-t --timestamps)'{-t,--timestamps}'[prefix lines with their time]' \\
          '(--stderr)--stdout[only standard output]' '(--stdout)--stderr[only standard error]' '1:job id:_jobctl_ids' ;;
        list) _arguments $global $filter '--limit[at most N jobs]:count:' '(-o --output)'{-o,--output}'[format]:format:(wide json name)' \\
          '(-q --quiet)--json[print protobuf JSON]' '(-q --quiet --json)'{-q,--quiet}'[print only ids]' '(-w --watch)'{-w,--watch}'[print changes]' ;;
        events) _arguments $global $filter '--json[print protobuf JSON]' ;;
        attach) _arguments $global '--no-stdin[only watch]' '(-n --tail)'{-n,--tail}'[first the last N lines]:lines:' \\
          '1:job id:{_jobctl_ids --state running}' ;;
        kill) _arguments $global '(-s --signal)'{-s,--signal}'[signal name or number]:signal:' \\
          '--all[every process of the job]' '1:job id:{_jobctl_ids --state running}' ;;
        wait) _arguments $global '--timeout[give up after]:duration:' '*:job id:_jobctl_ids' ;;
        rm) _arguments $global '(-f --force)'{-f,--force}'[stop a running job first]' \\
          '--all-finished[every finished job]' '*:job id:_jobctl_ids' ;;
        config) _arguments '1:verb:(get-contexts current-context use-context set-context delete-context)' '2:context:_jobctl_contexts' ;;
        completion) _arguments '1:shell:(bash zsh)' ;;
      esac ;;
  esac
}
if [[ $funcstack[1] == _jobctl ]]; then _jobctl "$@"; else compdef _jobctl jobctl; fi`;

const help = `Usage: jobctl completion bash|zsh

Print a shell completion script for commands, flags and job ids.

Example:
  source <(jobctl completion bash)    # in ~/.bashrc
  source <(jobctl completion zsh)     # in ~/.zshrc, after compinit`;

function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseCompletion(args);
  println(
    io.stdout,
    command.kind === 'help' ? help : command.shell === 'bash' ? bashScript : zshScript,
  );
  return Promise.resolve(0);
}

/** The `completion` command. */
export const command: CommandModule = { help, main };
