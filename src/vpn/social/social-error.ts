// SocialVPN's typed errors: one-line messages that say what is wrong and, where it helps,
// what to do. The CLI maps BadInput to exit code 2 and everything else to 1.

/** Any SocialVPN failure (a missing or corrupt key file, an unreadable friend list, ...). */
export class SocialError extends Error {
  override name = 'SocialError';
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' '));
  }
}

/** Input the user typed is wrong: a malformed friend code, a bad name, their own code. */
export class SocialInputError extends SocialError {
  override name = 'SocialInputError';
}
