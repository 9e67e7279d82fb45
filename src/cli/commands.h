#ifndef CELLA_CLI_COMMANDS_H
#define CELLA_CLI_COMMANDS_H
/* Each returns the process exit status. argv[0] is the command name. */
int cmd_run (int argc, char **argv);
#endif
