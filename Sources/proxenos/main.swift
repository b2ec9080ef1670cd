import Commands

// Thin: all dispatch logic lives in the Commands module.
Dispatcher.run(arguments: CommandLine.arguments)
