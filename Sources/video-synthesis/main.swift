import Stages

VideoSynthesisCommand.main()
