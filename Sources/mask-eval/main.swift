import Stages

MaskEvalCommand.main()
