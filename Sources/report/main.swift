import Stages

ReportCommand.main()
