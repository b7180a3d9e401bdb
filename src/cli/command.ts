/** The shape every `drill` sub-command module exports as `command`. */
export interface Command {
  name: string;
  /** One line for `drill --help`. */
  summary: string;
  /** Runs the command; resolves to the process exit code. Throw UserError for user mistakes. */
  run(argv: string[]): Promise<number>;
}
