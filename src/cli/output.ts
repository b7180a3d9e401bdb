/**
 * What a long-running command says, in the format its operator chose. `--log-format human`
 * (default, or DRILL_LOG_FORMAT) prints lines for people on stdout, as always; `--log-format json`
 * turns every such line into a JSON log record on stderr (level, time, module, msg and the
 * structured fields), next to the library logs, so a log collector parses every line. stdout is
 * then left to results a command prints on purpose (`--json` reports).
 */
import type { FlagSpec, ParsedArgs } from './args.ts';
import { str } from './args.ts';
import { createLogger, envLogFormat, envLogLevel, parseLogFormat } from '../util/log.ts';
import type { LogFormat, Logger, LogLevel } from '../util/log.ts';

/** The flag every long-running command takes. */
export const LOG_FORMAT_FLAG: FlagSpec = {
  type: 'string',
  help: 'human | json: JSON lines on stderr (level, time, module, msg, fields) for log collectors (default $DRILL_LOG_FORMAT, else human)',
};

/**
 * --log-format, else DRILL_LOG_FORMAT, else human.
 * @throws UserError naming --log-format (or DRILL_LOG_FORMAT) for an unknown value.
 */
export function logFormatOf(p: ParsedArgs): LogFormat {
  return parseLogFormat(str(p, 'log-format'), '--log-format') ?? envLogFormat();
}

export interface CliOutput {
  format: LogFormat;
  /** A line for the operator: printed as is (human), or an info record with `fields` (json). */
  say(msg: string, fields?: Record<string, unknown>): void;
  /** The same for something that went wrong but does not stop the command (a warn record). */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** The logger handed to the command's services, at DRILL_LOG's level (else `defaultLevel`). */
  log: Logger;
}

/**
 * The output and logger of command `name`.
 * @throws UserError naming DRILL_LOG when it holds an unknown level.
 */
export function cliOutput(name: string, format: LogFormat, opts: { defaultLevel?: LogLevel; level?: LogLevel; stream?: NodeJS.WritableStream } = {}): CliOutput {
  const log = createLogger({ level: opts.level ?? envLogLevel() ?? opts.defaultLevel ?? 'warn', format });
  if (format === 'human') {
    const stream = opts.stream ?? process.stdout;
    const say = (msg: string): void => void stream.write(msg + '\n');
    return { format, log, say, warn: say };
  }
  // The command's own lines are its output, not diagnostics: shown whatever DRILL_LOG says.
  const out = createLogger({ level: 'info', format, module: `drill:cli:${name}` });
  return { format, log, say: (msg, fields) => out.info(msg, fields), warn: (msg, fields) => out.warn(msg, fields) };
}
